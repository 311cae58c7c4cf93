#!lua
-- claim_job v2: hand one queued job to a worker. Takes its entry off the queue, records the claim
-- (who, when, until when) and sets status 'running' in every layout the stage writes, in one step:
-- a worker that dies after this call is found by recover_stalled; before it, nothing happened.
--
-- @keys 8
-- KEYS[1] stageKey       hash  the layout's stage record (see the include below)
-- KEYS[2] queueKey       list  queue:<name>; holds the entry within its first ARGV[7] positions
-- KEYS[3] processingKey  zset  queue:<name>:processing, member entry, score claim deadline (ms)
-- KEYS[4] claimsKey      hash  queue:<name>:claims,
--                              entry -> "<claimedAtMs>:<visibilityMs>:<workspaceId>:<workerId>"
-- KEYS[5] asideKey       list  where the entry goes when it leads to no job: queue:<name>:orphans
--                              (no record), or queue:<name>:unsupported when the caller found a
--                              record the package cannot place (ARGV[4] is then '')
-- KEYS[6] legacyKey      hash  job:<jobId>; neither read nor written unless the plan writes the legacy layout
-- KEYS[7] newKey         hash  ws:<workspaceId>:job:<jobId>; neither read nor written unless the plan writes it
-- KEYS[8] indexKey       zset  ws:<workspaceId>:jobs; gains the job when a repair copies it to the new layout
--                              (KEYS[6..8] are stand-ins, never touched, when ARGV[4] is '')
--
-- ARGV[1] stage selector: '' static (plan in ARGV[2]), '*' managed, '<n>' managed at epoch n only
-- ARGV[2] the plan in static mode (src/stages.ts planCode)
-- ARGV[3] entry, as the queue holds it   ARGV[4] workspaceId ('' when no record names a valid one)
-- ARGV[5] jobId   ARGV[6] workerId       ARGV[7] how deep in the queue the entry may sit
-- ARGV[8] visibility timeout (ms)
--
-- Replies: {epoch, stage, reply}, epoch and stage '' in static mode; reply is one of:
--   {'CLAIMED', repaired, fields, legacyForeign}
--        fields: flat HGETALL of the record of the plan's read origin (the new one when the legacy
--        key is another workspace's), now running; repaired: 'none' | 'new' | 'legacy' (as
--        update_status_dual); legacyForeign '1' when job:<jobId> holds another workspace's job, so
--        only the new layout was written
--   {'MOVED'}                            the entry is no longer near the queue's head: nothing written
--   {'SET_ASIDE'}                        the entry leads to no job: it moved to KEYS[5]
--   {'SKIPPED', status}                  the job is not 'queued' (finished or claimed): entry dropped
--   {'WRONGTYPE', key, expected, actual} nothing written
--   {'NO_PERMISSION', command, key}      nothing written
--   {'STAGE_UNSET'} | {'EPOCH_CHANGED'}  managed mode: nothing written
--
-- A repair copies the record's absolute expiry too, so both copies expire at the same millisecond.
-- Every check runs before the first write: Redis keeps the writes a failing script already made.

-- @include stage.v1.lua

local function run()
  local queueKey, processingKey, claimsKey, asideKey = KEYS[2], KEYS[3], KEYS[4], KEYS[5]
  local legacyKey, newKey, indexKey = KEYS[6], KEYS[7], KEYS[8]
  local entry, workspaceId, jobId, workerId = ARGV[3], ARGV[4], ARGV[5], ARGV[6]
  local depth, visibilityMs, authority = tonumber(ARGV[7]), ARGV[8], readFrom
  local writeBoth = writeLegacy and writeNew
  local known = workspaceId ~= ''

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
    or wrongType(claimsKey, 'hash') or wrongType(asideKey, 'list')
    or (known and writeLegacy and wrongType(legacyKey, 'hash'))
    or (known and writeNew and wrongType(newKey, 'hash'))
    or (known and writeBoth and wrongType(indexKey, 'zset'))
  if problem then return problem end

  if not redis.call('LPOS', queueKey, entry, 'MAXLEN', depth) then return {'MOVED'} end

  -- Which record this claim starts from, and which layout lacks it (as update_status_dual decides).
  -- A legacy key is global: one holding another workspace's job is never read or written for this one.
  local legacyExists = known and writeLegacy and redis.call('EXISTS', legacyKey) == 1
  local legacyOurs = legacyExists and redis.call('HGET', legacyKey, 'workspace_id') == workspaceId
  local legacyForeign = legacyExists and not legacyOurs
  local newExists = known and writeNew and redis.call('EXISTS', newKey) == 1
  local sourceKey, repaired = nil, 'none'
  if legacyOurs and newExists then
    sourceKey = (authority == 'legacy') and legacyKey or newKey
  elseif legacyOurs then
    sourceKey = legacyKey
    if writeBoth then repaired = 'new' end
  elseif newExists then
    sourceKey = newKey
    if writeBoth and not legacyForeign then repaired = 'legacy' end
  end

  if not sourceKey then
    problem = refused('LREM', queueKey, '1', entry) or refused('RPUSH', asideKey, entry)
    if problem then return problem end
    redis.call('LREM', queueKey, 1, entry)
    redis.call('RPUSH', asideKey, entry)
    return {'SET_ASIDE'}
  end

  local status = redis.call('HGET', sourceKey, 'status') or ''
  if status ~= 'queued' then
    problem = refused('LREM', queueKey, '1', entry)
    if problem then return problem end
    redis.call('LREM', queueKey, 1, entry)
    return {'SKIPPED', status}
  end

  local legacyWritten = writeLegacy and not legacyForeign
  local copyFrom, copyTo = nil, nil
  if repaired == 'new' then copyFrom, copyTo = legacyKey, newKey end
  if repaired == 'legacy' then copyFrom, copyTo = newKey, legacyKey end
  local expiresAt = copyFrom and redis.call('PEXPIRETIME', copyFrom) or -1

  problem = (legacyWritten and refused('HSET', legacyKey, 'f', 'v'))
    or (writeNew and refused('HSET', newKey, 'f', 'v'))
    or (repaired == 'new' and refused('ZADD', indexKey, 'NX', '0', jobId))
    or (expiresAt > 0 and refused('PEXPIREAT', copyTo, '1'))
    or refused('LREM', queueKey, '1', entry)
    or refused('ZADD', processingKey, '0', entry)
    or refused('HSET', claimsKey, entry, 'v')
  if problem then return problem end

  -- All checks passed; from here on only writes.
  local time = redis.call('TIME')
  local nowMs = time[1] .. string.format('%03d', math.floor(tonumber(time[2]) / 1000))

  if copyFrom then
    redis.call('HSET', copyTo, unpack(redis.call('HGETALL', copyFrom)))
    if expiresAt > 0 then redis.call('PEXPIREAT', copyTo, expiresAt) end
  end
  if repaired == 'new' then
    local createdAt = redis.call('HGET', legacyKey, 'created_at')
    if not tonumber(createdAt) then createdAt = nowMs end
    redis.call('ZADD', indexKey, 'NX', createdAt, jobId)
  end
  if legacyWritten then redis.call('HSET', legacyKey, 'status', 'running', 'updated_at', nowMs) end
  if writeNew then redis.call('HSET', newKey, 'status', 'running', 'updated_at', nowMs) end

  redis.call('LREM', queueKey, 1, entry)
  redis.call('ZADD', processingKey, tonumber(nowMs) + tonumber(visibilityMs), entry)
  redis.call('HSET', claimsKey, entry, nowMs .. ':' .. visibilityMs .. ':' .. workspaceId .. ':' .. workerId)

  -- The legacy record exists now unless the key is another workspace's (then only the new one does).
  local authoritativeKey = (authority == 'legacy' and not legacyForeign) and legacyKey or newKey
  return {'CLAIMED', repaired, redis.call('HGETALL', authoritativeKey), legacyForeign and '1' or '0'}
end

local reply = run()
if reply['err'] then return reply end
return {epoch, stageName, reply}
