#!lua
-- claim_job v3: hand one queued job to a worker. Takes its entry off the queue, records the claim
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
-- Replies (managed mode appends the epoch and the stage's name to each: see the stage include), one of:
--   {'CLAIMED', repaired, fields, legacyForeign}
--        fields: flat HGETALL of the record of the plan's read origin (the new one when the legacy
--        key is another workspace's), now running, its attempts one more (the same count in every
--        layout); repaired: 'none' | 'new' | 'legacy' (as update_status_dual); legacyForeign '1'
--        when job:<jobId> holds another workspace's job, so only the new layout was written
--   {'MOVED'}                            the entry is no longer near the queue's head: nothing written
--   {'SET_ASIDE'}                        the entry leads to no job: it moved to KEYS[5]
--   {'SKIPPED', status}                  the job is not 'queued' (finished or claimed): entry dropped
--                                        (and the job's entry_unfound mark, see the entry_unfound include)
--   {'WRONGTYPE', key, expected, actual} nothing written
--   {'NO_PERMISSION', command, key}      nothing written
--   {'STAGE_UNSET'} | {'EPOCH_CHANGED'}  managed mode: nothing written
--
-- A repair copies the record's absolute expiry too, so both copies expire at the same millisecond.
-- Every check runs before the first write: Redis keeps the writes a failing script already made.

-- @include stage.v2.lua
-- @include checks.v1.lua
-- @include job.v1.lua
-- @include entry_unfound.v1.lua

local function run()
  local queueKey, processingKey, claimsKey, asideKey = KEYS[2], KEYS[3], KEYS[4], KEYS[5]
  local legacyKey, newKey, indexKey = KEYS[6], KEYS[7], KEYS[8]
  local entry, workspaceId, jobId, workerId = ARGV[3], ARGV[4], ARGV[5], ARGV[6]
  local depth, visibilityMs = tonumber(ARGV[7]), ARGV[8]
  local known = workspaceId ~= ''

  local problem = wrongType(queueKey, 'list') or wrongType(processingKey, 'zset')
    or wrongType(claimsKey, 'hash') or wrongType(asideKey, 'list')
    or (known and writeLegacy and wrongType(legacyKey, 'hash'))
    or (known and writeNew and wrongType(newKey, 'hash'))
    or (known and writeLegacy and writeNew and wrongType(indexKey, 'zset'))
  if problem then return problem end

  if not redis.call('LPOS', queueKey, entry, 'MAXLEN', depth) then return {'MOVED'} end

  -- Which record this claim starts from, and which layout lacks it (as update_status_dual decides).
  local job = {}
  if known then
    job, problem = locateJob(legacyKey, newKey, workspaceId)
    if problem then return problem end
  end
  if not job.source then
    problem = refused('LREM', queueKey, '1', entry) or refused('RPUSH', asideKey, entry)
    if problem then return problem end
    redis.call('LREM', queueKey, 1, entry)
    redis.call('RPUSH', asideKey, entry)
    return {'SET_ASIDE'}
  end

  local status = job.record[STATUS] or ''
  if status ~= 'queued' then
    -- The entry an update could not find (see the entry_unfound include) is gone now.
    local unfound = entryUnfound(job)
    problem = refused('LREM', queueKey, '1', entry) or (unfound and clearEntryUnfoundRefused(job))
    if problem then return problem end
    redis.call('LREM', queueKey, 1, entry)
    if unfound then clearEntryUnfound(job) end
    return {'SKIPPED', status}
  end

  problem = jobWritesRefused(job, indexKey, jobId)
    or refused('LREM', queueKey, '1', entry)
    or refused('ZADD', processingKey, '0', entry)
    or refused('HSET', claimsKey, entry, 'v')
  if problem then return problem end

  -- All checks passed; from here on only writes.
  local nowMs = serverNowMs()
  repairJob(job, indexKey, jobId, nowMs)
  -- attempts counts claims: one more than the record the claim starts from, in every layout.
  local attempts = (tonumber(redis.call('HGET', job.source, 'attempts')) or 0) + 1
  -- The claim starts when the job's updated_at says it did (see writeJob), its deadline from then.
  local claimedAt = writeJob(job, nowMs, 'running', {'attempts', attempts})

  redis.call('LREM', queueKey, 1, entry)
  redis.call('ZADD', processingKey, tonumber(claimedAt) + tonumber(visibilityMs), entry)
  redis.call('HSET', claimsKey, entry, claimedAt .. ':' .. visibilityMs .. ':' .. workspaceId .. ':' .. workerId)

  -- The legacy record exists now unless the key is another workspace's (then only the new one does).
  local returned = (readFrom == 'legacy' and job.legacy ~= 'foreign') and legacyKey or newKey
  return {'CLAIMED', job.repaired, redis.call('HGETALL', returned), job.legacy == 'foreign' and '1' or '0'}
end

return staged(run())
