#!lua
-- update_status_dual v3: set a job's status (and a worker's error or result) in every layout the
-- stage writes, or in none. A terminal status (succeeded, failed, cancelled) also ends the job's
-- claim and applies the retention of that status, in the same step.
--
-- @keys 8
-- KEYS[1] stageKey       hash  the layout's stage record (see the stage include); managed mode also
--                              reads retention_<status> there
-- KEYS[2] legacyKey      hash  job:<jobId>; neither read nor written unless the plan writes the legacy layout
--                              (in complete, only its expiry follows the new record's)
-- KEYS[3] newKey         hash  ws:<workspaceId>:job:<jobId>; neither read nor written unless the plan writes it
--                              (in off, only its expiry follows the legacy record's)
-- KEYS[4] indexKey       zset  gains the job when a repair copies a legacy-only job into the new layout
--                              (touched only then)
-- KEYS[5] processingKey  zset  queue:<name>:processing (claim deadlines), see claim_job; touched only
--                              when the update ends a claim
-- KEYS[6] claimsKey      hash  queue:<name>:claims, see claim_job; read only by a guarded update (a
--                              workerId) or one to a terminal status
-- KEYS[7] expiriesKey    zset  queue:<name>:expiries, "<workspaceId>:<jobId>" -> when retention removes it (ms)
-- KEYS[8] queueKey       list  queue:<name>: loses the job's entry when the job leaves 'queued' here
--                              (touched only then; searched among the first ENTRY_SEARCH_DEPTH entries
--                              only; when it is not there and the queue is longer, the job is marked
--                              entry_unfound: see the entry_unfound include)
--
-- ARGV[1] stage selector: '' static (plan in ARGV[2]), '*' managed, '<n>' managed at epoch n only
-- ARGV[2] the plan in static mode (src/stages.ts planCode)
-- ARGV[3] workspaceId   ARGV[4] jobId   ARGV[5] status
-- ARGV[6] expectedStatus ('' = no compare-and-set), compared with the plan's read origin
-- ARGV[7] workerId guard ('' = none): only the worker holding the claim may update the job
-- ARGV[8..10] static mode: how long a succeeded, failed, cancelled job stays, in seconds ('' = for good)
-- ARGV[11..] more fields to set with the status, as name, value pairs (error, result)
--
-- Replies (managed mode appends the epoch and the stage's name to each: see the stage include), one of:
--   {'UPDATED', previousStatus, repaired, updatedAtMs, finished, legacyForeign, expiresAt}
--        repaired: 'none' | 'new' | 'legacy'; finished: '1' when a claim ended, else '0';
--        legacyForeign: '1' when job:<jobId> holds another workspace's job, so only the new
--        record was written (it can have no legacy twin), else '0'; expiresAt: when retention
--        removes the job (ms), '' for never
--   {'NOT_FOUND'}                        no record of this workspace in the layouts the stage reads
--   {'STATUS_CONFLICT', actualStatus, expected, rule}
--        nothing written; rule 'expected_status': expectedStatus did not match; rule 'queued_only':
--        the status is 'queued' and the job is not, in some layout the update writes (a status
--        change puts no entry on the queue, so the job would be stranded: requeue_job does);
--        actualStatus is then that layout's status
--   {'CLAIM_CONFLICT', claimant}         the guard's worker does not hold the claim ('' = nobody
--                                        does): nothing written
--   {'WRONGTYPE', key, expected, actual} a key the update reads or would write holds another type:
--                                        nothing written (a key the update does not touch is not
--                                        looked at, see KEYS)
--   {'NO_PERMISSION', command, key}      the ACL user may not run a write: nothing written
--   {'STAGE_UNSET'} | {'EPOCH_CHANGED'}  managed mode: nothing written
--
-- Repairs happen only when the stage writes both layouts: a job that exists in one layout only is
-- copied (all its fields and its absolute expiry) to the other before the update, so both layouts
-- end equal. A legacy key holding another workspace's job is never written. Retention gives every
-- copy of the job the same absolute expiry and notes it in the expiries set, where the sweep
-- (sweep_expired) finds it; a status without retention takes that expiry away again.
-- Every check runs before the first write: Redis keeps the writes a failing script already made.
-- A key's type is learnt from the first read of it (a redis.pcall whose error is WRONGTYPE), or
-- asked (TYPE) on the paths that write it without reading it first, before the first write.

-- @include stage.v2.lua
-- @include checks.v1.lua
-- @include job.v1.lua
-- @include retention.v1.lua

local ENTRY_SEARCH_DEPTH = 1000

local function run()
  local legacyKey, newKey, indexKey, processingKey, claimsKey, expiriesKey = KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
  local queueKey = KEYS[8]
  local workspaceId, jobId, status, expectedStatus, workerGuard = ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
  local terminal = status == 'succeeded' or status == 'failed' or status == 'cancelled'

  local job, problem = locateJob(legacyKey, newKey, workspaceId)
  if problem then return problem end
  if not job.source then return {'NOT_FOUND'} end

  -- The claim matters to a guarded update and to one that finishes the job (the claim ends with it).
  local claim
  if workerGuard ~= '' or terminal then
    claim, problem = findClaim(claimsKey, workspaceId, jobId)
    if problem then return problem end
  end
  local retention
  retention, problem = retentionPlan(job, expiriesKey, workspaceId, jobId, terminal and retentionSeconds(status, 8))
  if problem then return problem end

  if workerGuard ~= '' and (claim and claim.worker) ~= workerGuard then return {'CLAIM_CONFLICT', claim and claim.worker or ''} end
  local finishing = terminal and claim ~= nil

  local previousStatus = job.record[STATUS] or ''
  if expectedStatus ~= '' and previousStatus ~= expectedStatus then
    return {'STATUS_CONFLICT', previousStatus, expectedStatus, 'expected_status'}
  end
  -- 'queued' without a queue entry would strand the job: no worker would ever take it. Every copy
  -- the update writes must be queued already: a copy a stay in off or complete left behind can
  -- still say 'queued' (and be the read origin) after the job left the queue in the other layout.
  -- The read origin's status is the one a refusal names.
  if status == 'queued' then
    for _, record in ipairs({job.record, job.legacyWritten and job.legacyRecord, writeNew and job.newRecord}) do
      if record and record[STATUS] ~= 'queued' then return {'STATUS_CONFLICT', record[STATUS] or '', 'queued', 'queued_only'} end
    end
  end

  -- A job leaving 'queued' here (cancelled while it waits, or started outside the queue's workers)
  -- leaves the queue too when its entry is near the head, so no entry outlives it (a deeper one is
  -- dropped by the claim that reaches it).
  local leaving = previousStatus == 'queued' and status ~= 'queued'
  local entry
  if leaving then
    entry, problem = waitingEntry(queueKey, job, workspaceId, jobId, ENTRY_SEARCH_DEPTH)
    if problem then return problem end
  end

  problem = (job.repaired == 'new' and wrongType(indexKey, 'zset'))
    or (finishing and wrongType(processingKey, 'zset'))
    or jobWritesRefused(job, indexKey, jobId)
    or (finishing and (refused('ZREM', processingKey, claim.entry) or refused('HDEL', claimsKey, claim.entry)))
    or (retention and retentionRefused(retention, expiriesKey))
    or (entry and refused('LREM', queueKey, '1', entry))
  if problem then return problem end

  -- All checks passed; from here on only writes.
  local nowMs = serverNowMs()
  if job.copyFrom then repairJob(job, indexKey, jobId, nowMs) end
  -- The worker's fields (error, result), and the mark of an entry not found near the head of a
  -- queue longer than the search (see the entry_unfound include).
  local more
  if #ARGV > 10 then more = {unpack(ARGV, 11)} end
  if leaving and not entry and redis.call('LLEN', queueKey) > ENTRY_SEARCH_DEPTH then
    more = more or {}
    more[#more + 1] = 'entry_unfound'
    more[#more + 1] = '1'
  end
  local updatedAt = writeJob(job, nowMs, status, more)

  if finishing then
    redis.call('ZREM', processingKey, claim.entry)
    redis.call('HDEL', claimsKey, claim.entry)
  end

  if entry then redis.call('LREM', queueKey, 1, entry) end
  local expiresAt = retention and applyRetention(retention, expiriesKey, nowMs) or ''

  return {'UPDATED', previousStatus, job.repaired, updatedAt, finishing and '1' or '0', job.legacy == 'foreign' and '1' or '0', expiresAt}
end

return staged(run())
