#!lua
-- record_run v1: a migration step (backfill, verify, cleanup) writes its result into the layout's
-- stage record as it finishes, with the epoch it started in and the epoch it ends in, read here in
-- the same step: a run that spanned a transition is recorded as such, and satisfies no guard.
--
-- @keys 1
-- KEYS[1] stageKey  hash  the stage record (see src/stage-control/record.ts)
--
-- ARGV[1] the step: 'backfill' | 'verify' | 'cleanup'
-- ARGV[2] the epoch the run started in
-- ARGV[3] its summary, JSON
-- ARGV[4] legacy records it deleted (cleanup; else 0), added to cleanup_deleted
--
-- Replies (first element is the reply code):
--   {'RECORDED', endedEpoch}
--   {'STAGE_UNSET'}                        no record: nothing written
--   {'WRONGTYPE', key, 'hash', actual}     nothing written
--   {'NO_PERMISSION', command, key}        nothing written

local stageKey, step, startedEpoch, summary, deleted = KEYS[1], ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
if #ARGV ~= 4 or (step ~= 'backfill' and step ~= 'verify' and step ~= 'cleanup') or not deleted then
  return redis.error_reply("ERR record_run takes 'backfill', 'verify' or 'cleanup', an epoch, a summary and a count")
end

local actual = redis.call('TYPE', stageKey)['ok']
if actual == 'none' then return {'STAGE_UNSET'} end
if actual ~= 'hash' then return {'WRONGTYPE', stageKey, 'hash', actual} end
if not redis.acl_check_cmd('HSET', stageKey, 'f', 'v') then return {'NO_PERMISSION', 'HSET', stageKey} end

-- All checks passed; from here on only writes.
local time = redis.call('TIME')
local nowMs = time[1] .. string.format('%03d', math.floor(tonumber(time[2]) / 1000))
local endedEpoch = redis.call('HGET', stageKey, 'epoch')
redis.call('HSET', stageKey,
  'last_' .. step, summary,
  'last_' .. step .. '_started_epoch', startedEpoch,
  'last_' .. step .. '_ended_epoch', endedEpoch,
  'last_' .. step .. '_ended_at', nowMs)
redis.call('HINCRBY', stageKey, 'revision', 1)
if deleted > 0 then redis.call('HINCRBY', stageKey, 'cleanup_deleted', deleted) end
return {'RECORDED', endedEpoch}
