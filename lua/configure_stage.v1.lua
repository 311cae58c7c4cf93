#!lua
-- configure_stage v1: change the settings every instance of a managed layout shares, kept in its
-- stage record: how long a clean verify counts, and how long finished jobs stay (retention). Not a
-- transition: the stage and its epoch stay; the record's revision moves, so a transition checked
-- against the old settings changes nothing.
--
-- @keys 1
-- KEYS[1] stageKey  hash  the stage record (see src/stage-control/record.ts)
--
-- ARGV[1..] name, value pairs: max_verify_age_ms, retention_succeeded, retention_failed,
--           retention_cancelled; an empty value removes the setting (retention: jobs stay for good)
--
-- Replies (first element is the reply code):
--   {'CONFIGURED', revision}
--   {'UNSET'}                              there is no record: nothing written
--   {'WRONGTYPE', key, 'hash', actual}     nothing written
--   {'NO_PERMISSION', command, key}        nothing written

-- @include checks.v1.lua

local stageKey = KEYS[1]
local settings = {max_verify_age_ms = true, retention_succeeded = true, retention_failed = true, retention_cancelled = true}
if #ARGV == 0 or #ARGV % 2 ~= 0 then return redis.error_reply('ERR configure_stage takes name, value pairs') end
for i = 1, #ARGV, 2 do
  if not settings[ARGV[i]] then return redis.error_reply('ERR configure_stage does not know the setting ' .. ARGV[i]) end
end

local problem = wrongType(stageKey, 'hash')
if problem then return problem end
if redis.call('EXISTS', stageKey) == 0 then return {'UNSET'} end
problem = refused('HSET', stageKey, 'f', 'v') or refused('HDEL', stageKey, 'f')
if problem then return problem end

-- All checks passed; from here on only writes.
for i = 1, #ARGV, 2 do
  if ARGV[i + 1] == '' then redis.call('HDEL', stageKey, ARGV[i]) else redis.call('HSET', stageKey, ARGV[i], ARGV[i + 1]) end
end
return {'CONFIGURED', tostring(redis.call('HINCRBY', stageKey, 'revision', 1))}
