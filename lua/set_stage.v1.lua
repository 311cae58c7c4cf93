#!lua
-- set_stage v1: create the layout's stage record, or move it to another stage, as one
-- compare-and-set: of two operators racing, exactly one wins. The caller (src/stage-control) has
-- checked the transition's guards against the record at `revision`; any write to the record since
-- (another transition, a migration step recording its result) makes this call change nothing.
--
-- @keys 2
-- KEYS[1] stageKey    hash  the stage record: stage, plan, epoch, revision, changed_at, ... (see record.ts)
-- KEYS[2] historyKey  list  the last transitions, newest first, each a JSON object; at most 200 kept
--
-- ARGV[1] 'init' (the record must not exist) | 'set' (it must, at ARGV[2])
-- ARGV[2] the revision the caller read ('' for init)
-- ARGV[3] stage name   ARGV[4] its plan (src/stages.ts planCode)
-- ARGV[5] changed_by   ARGV[6] reason   ARGV[7] forced '1'|'0'
-- ARGV[8..] more fields to set, as name, value pairs (the guards' bookkeeping, settings on init)
--
-- Replies (first element is the reply code):
--   {'SET', epoch, changedAtMs}            the record now holds the stage at this epoch
--   {'EXISTS'}                             init: a record exists already: nothing written
--   {'UNSET'}                              set: there is no record: nothing written
--   {'REVISION_CHANGED', revision}         the record changed since the caller read it: nothing written
--   {'WRONGTYPE', key, expected, actual}   nothing written
--   {'NO_PERMISSION', command, key}        nothing written
--
-- Every check runs before the first write.

local stageKey, historyKey = KEYS[1], KEYS[2]
local mode, expectedRevision = ARGV[1], ARGV[2]
local stage, plan, changedBy, reason, forced = ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
if #ARGV < 7 or #ARGV % 2 ~= 1 or (mode ~= 'init' and mode ~= 'set') then
  return redis.error_reply('ERR set_stage takes a mode, a revision, five fields and name, value pairs')
end

local function wrongType(key, expected)
  local actual = redis.call('TYPE', key)['ok']
  if actual ~= 'none' and actual ~= expected then return {'WRONGTYPE', key, expected, actual} end
end
local problem = wrongType(stageKey, 'hash') or wrongType(historyKey, 'list')
if problem then return problem end

local exists = redis.call('EXISTS', stageKey) == 1
if mode == 'init' and exists then return {'EXISTS'} end
if mode == 'set' and not exists then return {'UNSET'} end
local current = redis.call('HMGET', stageKey, 'revision', 'epoch', 'stage')
if mode == 'set' and current[1] ~= expectedRevision then return {'REVISION_CHANGED', current[1] or ''} end

for _, check in ipairs({{'HSET', stageKey, 'f', 'v'}, {'LPUSH', historyKey, 'v'}, {'LTRIM', historyKey, '0', '1'}}) do
  if not redis.acl_check_cmd(unpack(check)) then return {'NO_PERMISSION', check[1], check[2]} end
end

-- All checks passed; from here on only writes.
local time = redis.call('TIME')
local nowMs = time[1] .. string.format('%03d', math.floor(tonumber(time[2]) / 1000))
local epoch = tostring((tonumber(current[2]) or 0) + 1)
local revision = tostring((tonumber(current[1]) or 0) + 1)
local fields = {
  'stage', stage, 'plan', plan, 'epoch', epoch, 'revision', revision, 'changed_at', nowMs,
  'changed_by', changedBy, 'reason', reason, 'forced', forced,
}
for i = 8, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', stageKey, unpack(fields))
redis.call('LPUSH', historyKey, cjson.encode({
  epoch = tonumber(epoch), from = current[3] or '', to = stage, at = tonumber(nowMs),
  by = changedBy, reason = reason, forced = forced == '1',
}))
redis.call('LTRIM', historyKey, 0, 199)
return {'SET', epoch, nowMs}
