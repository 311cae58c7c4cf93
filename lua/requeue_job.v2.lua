#!lua
-- requeue_job v2: put a job back on the queue as 'queued': a failed or cancelled job, or a running
-- one whose claim the given worker holds (which the same step ends). Its entry goes on the queue in
-- the stage's form (or, for a job marked entry_unfound, its old entry if it still waits: see the
-- entry_unfound include), and any retention expiry is taken away, so it cannot expire while it waits.
-- attempts is left as it is: it counts claims.
--
-- @keys 8
-- KEYS[1] stageKey       hash  the layout's stage record (see the stage include)
-- KEYS[2] legacyKey      hash  job:<jobId>; neither read nor written unless the plan writes the legacy layout
--                              (in complete, only its expiry is taken away with the new record's)
-- KEYS[3] newKey         hash  ws:<workspaceId>:job:<jobId>; neither read nor written unless the plan writes it
--                              (in off, only its expiry is taken away with the legacy record's)
-- KEYS[4] indexKey       zset  gains the job when a repair copies a legacy-only job into the new layout
-- KEYS[5] queueKey       list  RPUSH of the job's entry: the bare jobId while the legacy layout is written, else "<workspaceId>:<jobId>"
-- KEYS[6] processingKey  zset  queue:<name>:processing, see claim_job
-- KEYS[7] claimsKey      hash  queue:<name>:claims, see claim_job
-- KEYS[8] expiriesKey    zset  queue:<name>:expiries, see update_status_dual
--
-- ARGV[1] stage selector: '' static (plan in ARGV[2]), '*' managed, '<n>' managed at epoch n only
-- ARGV[2] the plan in static mode (src/stages.ts planCode)
-- ARGV[3] workspaceId   ARGV[4] jobId   ARGV[5] workerId ('' = none; required for a running job)
--
-- Replies (managed mode appends the epoch and the stage's name to each: see the stage include), one of:
--   {'REQUEUED', previousStatus, repaired, updatedAtMs, legacyForeign}
--   {'NOT_FOUND'}                        no record of this workspace in the layouts the stage reads
--   {'STATUS_CONFLICT', actualStatus}    the job is succeeded or already queued: nothing written
--   {'CLAIM_CONFLICT', claimant}         running, and the worker given does not hold its claim
--                                        ('' = nobody does): nothing written
--   {'WRONGTYPE', key, expected, actual} nothing written
--   {'NO_PERMISSION', command, key}      nothing written
--   {'STAGE_UNSET'} | {'EPOCH_CHANGED'}  managed mode: nothing written
--
-- Repairs as update_status_dual. Every check runs before the first write.

-- @include stage.v2.lua
-- @include checks.v1.lua
-- @include job.v1.lua
-- @include entry_unfound.v1.lua
-- @include retention.v1.lua

local function run()
  local legacyKey, newKey, indexKey, queueKey = KEYS[2], KEYS[3], KEYS[4], KEYS[5]
  local processingKey, claimsKey, expiriesKey = KEYS[6], KEYS[7], KEYS[8]
  local workspaceId, jobId, workerId = ARGV[3], ARGV[4], ARGV[5]
  local member = workspaceId .. ':' .. jobId

  local problem = (writeLegacy and wrongType(legacyKey, 'hash'))
    or (writeNew and wrongType(newKey, 'hash'))
    or (writeLegacy and writeNew and wrongType(indexKey, 'zset'))
    or wrongType(queueKey, 'list') or wrongType(processingKey, 'zset')
    or wrongType(claimsKey, 'hash') or wrongType(expiriesKey, 'zset')
  if problem then return problem end

  local job, claim
  job, problem = locateJob(legacyKey, newKey, workspaceId)
  if problem then return problem end
  if not job.source then return {'NOT_FOUND'} end
  local previousStatus = job.record[STATUS] or ''
  claim, problem = findClaim(claimsKey, workspaceId, jobId)
  if problem then return problem end
  if previousStatus == 'running' then
    if workerId == '' or (claim and claim.worker) ~= workerId then return {'CLAIM_CONFLICT', claim and claim.worker or ''} end
  elseif previousStatus ~= 'failed' and previousStatus ~= 'cancelled' then
    return {'STATUS_CONFLICT', previousStatus}
  end

  -- Any retention expiry goes (see the retention include). The entry is bare while the legacy
  -- layout is written and the legacy key is this job's (a bare entry is found through it), else named.
  local retention
  retention, problem = retentionPlan(job, expiriesKey, workspaceId, jobId, nil)
  if problem then return problem end
  local entry = (writeLegacy and job.legacy ~= 'foreign') and jobId or member
  -- A job an update took off the queue without finding its entry: if that entry still waits, anywhere
  -- in the queue, it serves again (O(queue length), for such jobs only).
  local unfound = entryUnfound(job)
  local waiting = unfound and waitingEntry(queueKey, job, workspaceId, jobId, 0)

  problem = jobWritesRefused(job, indexKey, jobId)
    or retentionRefused(retention, expiriesKey)
    or (not waiting and refused('RPUSH', queueKey, entry))
    or (unfound and clearEntryUnfoundRefused(job))
    or (claim and (refused('ZREM', processingKey, claim.entry) or refused('HDEL', claimsKey, claim.entry)))
  if problem then return problem end

  -- All checks passed; from here on only writes.
  local nowMs = serverNowMs()
  repairJob(job, indexKey, jobId, nowMs)
  local updatedAt = writeJob(job, nowMs, 'queued')
  applyRetention(retention, expiriesKey, nowMs)
  if claim then
    redis.call('ZREM', processingKey, claim.entry)
    redis.call('HDEL', claimsKey, claim.entry)
  end
  if unfound then clearEntryUnfound(job) end
  if not waiting then redis.call('RPUSH', queueKey, entry) end
  return {'REQUEUED', previousStatus, job.repaired, updatedAt, job.legacy == 'foreign' and '1' or '0'}
end

return staged(run())
