#!lua
-- update_status_dual v2: set a job's status in every layout the stage writes, or in none. A
-- terminal status (succeeded, failed, cancelled) also ends the job's claim, in the same step.
--
-- @keys 6
-- KEYS[1] stageKey       hash  the layout's stage record (see the include below)
-- KEYS[2] legacyKey      hash  job:<jobId>; neither read nor written unless the plan writes the legacy layout
-- KEYS[3] newKey         hash  ws:<workspaceId>:job:<jobId>; neither read nor written unless the plan writes it
-- KEYS[4] indexKey       zset  gains the job when a repair copies a legacy-only job into the new layout
-- KEYS[5] processingKey  zset  queue:<name>:processing (claim deadlines), see claim_job
-- KEYS[6] claimsKey      hash  queue:<name>:claims, see claim_job
--
-- ARGV[1] stage selector: '' static (plan in ARGV[2]), '*' managed, '<n>' managed at epoch n only
-- ARGV[2] the plan in static mode (src/stages.ts planCode)
-- ARGV[3] workspaceId   ARGV[4] jobId   ARGV[5] status
-- ARGV[6] expectedStatus ('' = no compare-and-set), compared with the plan's read origin
-- ARGV[7] workerId guard ('' = none): only the worker holding the claim may update the job
--
-- Replies: {epoch, stage, reply}, epoch and stage '' in static mode; reply is one of:
--   {'UPDATED', previousStatus, repaired, updatedAtMs, finished, legacyForeign}
--        repaired: 'none' | 'new' | 'legacy'; finished: '1' when a claim ended, else '0';
--        legacyForeign: '1' when job:<jobId> holds another workspace's job, so only the new
--        record was written (it can have no legacy twin), else '0'
--   {'NOT_FOUND'}                        no record of this workspace in the layouts the stage reads
--   {'STATUS_CONFLICT', actualStatus, expected, rule}
--        nothing written; rule 'expected_status': expectedStatus did not match; rule 'queued_only':
--        the status is 'queued' and the job is not (a status change puts no entry on the queue, so
--        the job would be stranded)
--   {'CLAIM_CONFLICT', claimant}         the guard's worker does not hold the claim ('' = nobody
--                                        does): nothing written
--   {'WRONGTYPE', key, expected, actual} a key holds another type: nothing written
--   {'NO_PERMISSION', command, key}      the ACL user may not run a write: nothing written
--   {'STAGE_UNSET'} | {'EPOCH_CHANGED'}  managed mode: nothing written
--
-- Repairs happen only when the stage writes both layouts: a job that exists in one layout only is
-- copied (all its fields and its absolute expiry) to the other before the update, so both layouts
-- end equal. A legacy key holding another workspace's job is never written.
-- Every check runs before the first write: Redis keeps the writes a failing script already made.

-- @include stage.v1.lua

local function run()
  local legacyKey, newKey, indexKey, processingKey, claimsKey = KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
  local workspaceId, jobId, status, expectedStatus = ARGV[3], ARGV[4], ARGV[5], ARGV[6]
  local authority, workerGuard = readFrom, ARGV[7]
  -- The job's queue entry in both forms: bare while the legacy layout is written, else prefixed.
  local entries = {jobId, workspaceId .. ':' .. jobId}
  local terminal = status == 'succeeded' or status == 'failed' or status == 'cancelled'
  local writeBoth = writeLegacy and writeNew

  local function wrongType(key, expected)
    local actual = redis.call('TYPE', key)['ok']
    if actual ~= 'none' and actual ~= expected then
      return {'WRONGTYPE', key, expected, actual}
    end
  end

  local typeError = (writeLegacy and wrongType(legacyKey, 'hash'))
    or (writeNew and wrongType(newKey, 'hash'))
    or (writeBoth and wrongType(indexKey, 'zset'))
    or wrongType(processingKey, 'zset')
    or wrongType(claimsKey, 'hash')
  if typeError then return typeError end

  -- A legacy key is global (job:<jobId>): it counts as this workspace's only when its record says so.
  local legacyState = 'absent'
  if writeLegacy and redis.call('EXISTS', legacyKey) == 1 then
    if redis.call('HGET', legacyKey, 'workspace_id') == workspaceId then
      legacyState = 'ours'
    else
      legacyState = 'foreign'
    end
  end
  local newExists = writeNew and redis.call('EXISTS', newKey) == 1

  -- The source is the record the update starts from; a repair copies it to the layout that lacks it.
  local sourceKey, repaired = nil, 'none'
  if legacyState == 'ours' and newExists then
    sourceKey = (authority == 'legacy') and legacyKey or newKey
  elseif legacyState == 'ours' then
    sourceKey = legacyKey
    if writeBoth then repaired = 'new' end
  elseif newExists then
    sourceKey = newKey
    if writeBoth and legacyState == 'absent' then repaired = 'legacy' end
  end
  if not sourceKey then return {'NOT_FOUND'} end
  local legacyWritten = writeLegacy and legacyState ~= 'foreign'

  local claimedEntry, claimant = nil, nil
  for _, entry in ipairs(entries) do
    local claim = redis.call('HGET', claimsKey, entry)
    -- a bare entry is the jobId alone: the claim names the workspace, so another's job is not ours
    local claimWorkspace, worker = string.match(claim or '', '^%d+:%d+:([^:]*):(.*)$')
    if claimWorkspace == workspaceId then
      claimedEntry, claimant = entry, worker
      break
    end
  end
  if workerGuard ~= '' and claimant ~= workerGuard then return {'CLAIM_CONFLICT', claimant or ''} end
  local finishing = terminal and claimedEntry ~= nil

  local previousStatus = redis.call('HGET', sourceKey, 'status') or ''
  if expectedStatus ~= '' and previousStatus ~= expectedStatus then
    return {'STATUS_CONFLICT', previousStatus, expectedStatus, 'expected_status'}
  end
  -- 'queued' without a queue entry would strand the job: no worker would ever take it.
  if status == 'queued' and previousStatus ~= 'queued' then
    return {'STATUS_CONFLICT', previousStatus, 'queued', 'queued_only'}
  end

  local copyFrom, copyTo = nil, nil
  if repaired == 'new' then copyFrom, copyTo = legacyKey, newKey end
  if repaired == 'legacy' then copyFrom, copyTo = newKey, legacyKey end
  local expiresAt = copyFrom and redis.call('PEXPIRETIME', copyFrom) or -1

  -- Redis checks ACLs at each command, so a user allowed these reads but not a later write would
  -- leave the writes before it behind: ask about every write first.
  local function refused(command, key, ...)
    if not redis.acl_check_cmd(command, key, ...) then return {'NO_PERMISSION', command, key} end
  end
  local denied = (legacyWritten and refused('HSET', legacyKey, 'f', 'v'))
    or (writeNew and refused('HSET', newKey, 'f', 'v'))
    or (repaired == 'new' and refused('ZADD', indexKey, 'NX', '0', jobId))
    or (expiresAt > 0 and refused('PEXPIREAT', copyTo, '1'))
    or (finishing and (refused('ZREM', processingKey, claimedEntry) or refused('HDEL', claimsKey, claimedEntry)))
  if denied then return denied end

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

  if legacyWritten then redis.call('HSET', legacyKey, 'status', status, 'updated_at', nowMs) end
  if writeNew then redis.call('HSET', newKey, 'status', status, 'updated_at', nowMs) end

  if finishing then
    redis.call('ZREM', processingKey, claimedEntry)
    redis.call('HDEL', claimsKey, claimedEntry)
  end

  return {'UPDATED', previousStatus, repaired, nowMs, finishing and '1' or '0', legacyState == 'foreign' and '1' or '0'}
end

local reply = run()
if reply['err'] then return reply end
return {epoch, stageName, reply}
