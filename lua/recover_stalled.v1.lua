#!lua
-- recover_stalled v1: put jobs whose claim outlived its visibility timeout back on the queue, with
-- status 'queued' in the layouts the stage writes. A job moves from the processing set to the queue
-- in one step, so it is never in both and never in neither.
--
-- @keys 4 + 2 per job (at most 100 jobs per call)
-- KEYS[1] queueKey       list  queue:<name>; recovered entries are RPUSHed
-- KEYS[2] processingKey  zset  queue:<name>:processing, member entry, score claim deadline (ms)
-- KEYS[3] claimsKey      hash  queue:<name>:claims, see claim_job
-- KEYS[4] orphansKey     list  queue:<name>:orphans: stalled entries whose job record is missing
-- KEYS[3+2i] legacyKey   hash  job:<jobId> of job i; neither read nor written when ARGV[1] is '0'
-- KEYS[4+2i] newKey      hash  ws:<workspaceId>:job:<jobId>; neither read nor written when ARGV[2] is '0'
--
-- ARGV[1] writeLegacy '1'|'0'   ARGV[2] writeNew '1'|'0'
-- ARGV[1+2i] entry of job i, as the processing set holds it
-- ARGV[2+2i] workspaceId of job i ('' when no record names one)
--
-- Replies (first element is the reply code):
--   {'RECOVERED', recovered, orphaned, skipped}
--        skipped: entries no longer stalled (finished or claimed again since the caller looked)
--   {'WRONGTYPE', key, expected, actual}   nothing written
--   {'NO_PERMISSION', command, key}        nothing written
--
-- Every check runs before the first write: Redis keeps the writes a failing script already made.

local queueKey, processingKey, claimsKey, orphansKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local writeLegacy, writeNew = ARGV[1] == '1', ARGV[2] == '1'
local jobs = (#KEYS - 4) / 2
if jobs < 1 or jobs > 100 or jobs % 1 ~= 0 or #ARGV ~= 2 + 2 * jobs then
  return redis.error_reply('ERR recover_stalled takes 1 to 100 jobs, two keys and two arguments each')
end

local function wrongType(key, expected)
  local actual = redis.call('TYPE', key)['ok']
  if actual ~= 'none' and actual ~= expected then
    return {'WRONGTYPE', key, expected, actual}
  end
end
local function refused(command, key, ...)
  if not redis.acl_check_cmd(command, key, ...) then return {'NO_PERMISSION', command, key} end
end

local problem = wrongType(queueKey, 'list') or wrongType(processingKey, 'zset')
  or wrongType(claimsKey, 'hash') or wrongType(orphansKey, 'list')
if problem then return problem end

local time = redis.call('TIME')
local nowMs = time[1] .. string.format('%03d', math.floor(tonumber(time[2]) / 1000))

-- Decide every job first: which layouts hold its record, or whether it is no longer stalled.
local plans = {}
for i = 1, jobs do
  local legacyKey, newKey = KEYS[3 + 2 * i], KEYS[4 + 2 * i]
  local entry, workspaceId = ARGV[1 + 2 * i], ARGV[2 + 2 * i]
  problem = (writeLegacy and wrongType(legacyKey, 'hash')) or (writeNew and wrongType(newKey, 'hash'))
  if problem then return problem end
  local deadline = tonumber(redis.call('ZSCORE', processingKey, entry))
  local plan = {entry = entry, stalled = deadline ~= nil and deadline <= tonumber(nowMs)}
  if plan.stalled and workspaceId ~= '' then
    plan.legacy = writeLegacy and redis.call('HGET', legacyKey, 'workspace_id') == workspaceId and legacyKey
    plan.new = writeNew and redis.call('EXISTS', newKey) == 1 and newKey
  end
  plans[i] = plan
end

problem = refused('ZREM', processingKey, 'e') or refused('HDEL', claimsKey, 'e')
  or refused('RPUSH', queueKey, 'e') or refused('RPUSH', orphansKey, 'e')
for i = 1, jobs do
  problem = problem or (plans[i].legacy and refused('HSET', plans[i].legacy, 'f', 'v'))
    or (plans[i].new and refused('HSET', plans[i].new, 'f', 'v'))
end
if problem then return problem end

-- All checks passed; from here on only writes.
local recovered, orphaned, skipped = 0, 0, 0
for i = 1, jobs do
  local plan = plans[i]
  if not plan.stalled then
    skipped = skipped + 1
  else
    redis.call('ZREM', processingKey, plan.entry)
    redis.call('HDEL', claimsKey, plan.entry)
    if plan.legacy or plan.new then
      if plan.legacy then redis.call('HSET', plan.legacy, 'status', 'queued', 'updated_at', nowMs) end
      if plan.new then redis.call('HSET', plan.new, 'status', 'queued', 'updated_at', nowMs) end
      redis.call('RPUSH', queueKey, plan.entry)
      recovered = recovered + 1
    else
      redis.call('RPUSH', orphansKey, plan.entry)
      orphaned = orphaned + 1
    end
  end
end
return {'RECOVERED', recovered, orphaned, skipped}
