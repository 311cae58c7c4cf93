#!lua
-- delete_job v2: remove one job whole: its record from every layout it is in (a legacy record only
-- when its workspace_id names this workspace), its index entry, any queue, processing, claim and
-- expiry entry, and its idempotency key, so that a replay cannot answer with a deleted job. Refused
-- while a worker holds the job, unless forced.
--
-- @keys 9
-- KEYS[1] stageKey        hash    the layout's stage record (see the stage include)
-- KEYS[2] legacyKey       hash    job:<jobId>
-- KEYS[3] newKey          hash    ws:<workspaceId>:job:<jobId>
-- KEYS[4] indexKey        zset    ws:<workspaceId>:jobs
-- KEYS[5] queueKey        list    queue:<name>: the job's entry, while it waits
-- KEYS[6] processingKey   zset    queue:<name>:processing
-- KEYS[7] claimsKey       hash    queue:<name>:claims
-- KEYS[8] expiriesKey     zset    queue:<name>:expiries
-- KEYS[9] idempotencyKey  string  ws:<workspaceId>:idem:<key> the job was made with (a stand-in, never
--                                 touched, when ARGV[6] is '')
--
-- ARGV[1] stage selector: '' static, '*' managed, '<n>' managed at epoch n only
-- ARGV[2] the plan in static mode (its read origin says which record tells whether the job waits;
--         the job is deleted from every layout it is in)
-- ARGV[3] workspaceId   ARGV[4] jobId   ARGV[5] force '1'|'0'
-- ARGV[6] the idempotency key the caller read from the job ('' = none)
--
-- Replies (managed mode appends the epoch and the stage's name to each: see the stage include), one of:
--   {'DELETED', legacyDeleted, newDeleted}   '1' or '0' each
--   {'NOT_FOUND'}                        no record of this workspace in either layout
--   {'CHANGED'}                          the job's idempotency key is not the one the caller read: nothing written
--   {'CLAIM_CONFLICT', claimant}         a worker holds the job and force is '0': nothing written
--   {'WRONGTYPE', key, expected, actual} nothing written
--   {'NO_PERMISSION', command, key}      nothing written
--   {'STAGE_UNSET'} | {'EPOCH_CHANGED'}  managed mode: nothing written
--
-- A waiting job's entry is found with LREM, which walks the queue: O(queue length), once.
-- Every check runs before the first write.

-- @include stage.v2.lua
-- @include checks.v1.lua
-- @include job.v1.lua

local function run()
  local legacyKey, newKey, indexKey, queueKey = KEYS[2], KEYS[3], KEYS[4], KEYS[5]
  local processingKey, claimsKey, expiriesKey, idempotencyKey = KEYS[6], KEYS[7], KEYS[8], KEYS[9]
  local workspaceId, jobId, force, idempotency = ARGV[3], ARGV[4], ARGV[5] == '1', ARGV[6]
  local member = workspaceId .. ':' .. jobId

  local problem = wrongType(legacyKey, 'hash') or wrongType(newKey, 'hash') or wrongType(indexKey, 'zset')
    or wrongType(queueKey, 'list') or wrongType(processingKey, 'zset') or wrongType(claimsKey, 'hash')
    or wrongType(expiriesKey, 'zset') or (idempotency ~= '' and wrongType(idempotencyKey, 'string'))
  if problem then return problem end

  local legacyOurs = redis.call('HGET', legacyKey, 'workspace_id') == workspaceId
  local newExists = redis.call('EXISTS', newKey) == 1
  if not legacyOurs and not newExists then return {'NOT_FOUND'} end
  local record = newExists and newKey or legacyKey
  if (redis.call('HGET', record, 'idempotency_key') or '') ~= idempotency then return {'CHANGED'} end

  local claim = findClaim(claimsKey, workspaceId, jobId)
  if claim and not force then return {'CLAIM_CONFLICT', claim.worker} end
  -- Whether it waits, by the record the stage reads: a twin left from another stage may be stale
  -- (in off, a new record still running while the legacy one was queued again).
  local authority = (legacyOurs and (readFrom == 'legacy' or not newExists)) and legacyKey or newKey
  local waiting = redis.call('HGET', authority, 'status') == 'queued' or redis.call('HGET', authority, 'entry_unfound') == '1'
  -- The key answers for this job only while it names it: after its TTL another job may own it.
  local ownKey = idempotency ~= '' and string.match(redis.call('GET', idempotencyKey) or '', ':(.+)$') == jobId

  problem = (legacyOurs and refused('DEL', legacyKey)) or (newExists and refused('DEL', newKey))
    or refused('ZREM', indexKey, jobId) or refused('ZREM', expiriesKey, member)
    or refused('ZREM', processingKey, member) or refused('HDEL', claimsKey, member)
    or (waiting and refused('LREM', queueKey, '1', member)) or (ownKey and refused('DEL', idempotencyKey))
  if problem then return problem end

  -- All checks passed; from here on only writes.
  if legacyOurs then redis.call('DEL', legacyKey) end
  if newExists then redis.call('DEL', newKey) end
  redis.call('ZREM', indexKey, jobId)
  redis.call('ZREM', expiriesKey, member)
  -- A bare entry names no workspace: it is this job's only when its claim says so, or, waiting,
  -- when the legacy key (global, one job per id) is this job's.
  for _, entry in ipairs({jobId, member}) do
    if entry == member or (claim and claim.entry == entry) then
      redis.call('ZREM', processingKey, entry)
      redis.call('HDEL', claimsKey, entry)
    end
    if waiting and (entry == member or legacyOurs) then redis.call('LREM', queueKey, 1, entry) end
  end
  if ownKey then redis.call('DEL', idempotencyKey) end
  return {'DELETED', legacyOurs and '1' or '0', newExists and '1' or '0'}
end

return staged(run())
