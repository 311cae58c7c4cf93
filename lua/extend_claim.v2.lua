#!lua
-- extend_claim v2: a worker still running a job pushes its claim's deadline out, so a job that runs
-- longer than its visibility timeout is not recovered and run twice. Only the worker holding the
-- claim may, past its deadline too, as long as recover_stalled has not taken the job back.
--
-- @keys 3
-- KEYS[1] stageKey       hash  the layout's stage record (see the stage include)
-- KEYS[2] processingKey  zset  queue:<name>:processing, member entry, score claim deadline (ms)
-- KEYS[3] claimsKey      hash  queue:<name>:claims, entry -> "<claimedAtMs>:<visibilityMs>:<workspaceId>:<workerId>"
--
-- ARGV[1] stage selector: '' static, '*' managed, '<n>' managed at epoch n only
-- ARGV[2] the plan in static mode (unused here)
-- ARGV[3] workspaceId   ARGV[4] jobId   ARGV[5] workerId   ARGV[6] visibility timeout (ms) from now
--
-- Replies (managed mode appends the epoch and the stage's name to each: see the stage include), one of:
--   {'EXTENDED', deadlineMs}
--   {'CLAIM_CONFLICT', claimant}         another worker holds the claim, or nobody ('') does: nothing written
--   {'WRONGTYPE', key, expected, actual} nothing written
--   {'NO_PERMISSION', command, key}      nothing written
--   {'STAGE_UNSET'} | {'EPOCH_CHANGED'}  managed mode: nothing written

-- @include stage.v2.lua
-- @include checks.v1.lua
-- @include job.v1.lua

local function run()
  local processingKey, claimsKey = KEYS[2], KEYS[3]
  local workspaceId, jobId, workerId, visibilityMs = ARGV[3], ARGV[4], ARGV[5], ARGV[6]

  local problem = wrongType(processingKey, 'zset') or wrongType(claimsKey, 'hash')
  if problem then return problem end

  local claim = findClaim(claimsKey, workspaceId, jobId)
  -- A claim record without its processing entry was taken back (or never whole): not this worker's.
  if claim and not redis.call('ZSCORE', processingKey, claim.entry) then claim = nil end
  if not claim or claim.worker ~= workerId then return {'CLAIM_CONFLICT', claim and claim.worker or ''} end

  problem = refused('ZADD', processingKey, 'XX', '0', claim.entry) or refused('HSET', claimsKey, claim.entry, 'v')
  if problem then return problem end

  -- All checks passed; from here on only writes.
  local deadline = tonumber(serverNowMs()) + tonumber(visibilityMs)
  redis.call('ZADD', processingKey, 'XX', deadline, claim.entry)
  redis.call('HSET', claimsKey, claim.entry, claim.claimedAt .. ':' .. visibilityMs .. ':' .. workspaceId .. ':' .. workerId)
  return {'EXTENDED', tostring(deadline)}
end

return staged(run())
