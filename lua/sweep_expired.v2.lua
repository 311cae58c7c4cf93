#!lua
-- sweep_expired v2: after retention's expiry removed a finished job's records (Redis gives no
-- reliable expiry event, so the expiries set says which and when), remove what still names it: its
-- workspace index entry and any processing or claim entry, and its entry in the expiries set. A
-- bounded batch; safe from several processes at once (a job already swept is passed over).
--
-- @keys 4 + 3 per job (at most 100 jobs per call)
-- KEYS[1]    stageKey       hash  the layout's stage record (see the stage include)
-- KEYS[2]    expiriesKey    zset  queue:<name>:expiries, "<workspaceId>:<jobId>" -> expiry (ms)
-- KEYS[3]    processingKey  zset  queue:<name>:processing
-- KEYS[4]    claimsKey      hash  queue:<name>:claims
-- KEYS[3i+2] legacyKey      hash  job:<jobId> of job i
-- KEYS[3i+3] newKey         hash  ws:<workspaceId>:job:<jobId>
-- KEYS[3i+4] indexKey       zset  ws:<workspaceId>:jobs
--
-- ARGV[1] stage selector: '' static, '*' managed, '<n>' managed at epoch n only
-- ARGV[2] the plan in static mode (unused: a job is gone when no layout holds it)
-- ARGV[2i+1] workspaceId of job i   ARGV[2i+2] jobId of job i
--
-- Replies (managed mode appends the epoch and the stage's name to each: see the stage include), one of:
--   {'SWEPT', removed, rescheduled, kept}
--     removed: due, and no layout holds the job: its entries are gone now
--     rescheduled: due, but a record still expires later: the set now holds that time
--     kept: due, but a record no longer expires: no longer in the set
--     (jobs not due, or no longer in the set, are passed over)
--   {'WRONGTYPE', key, expected, actual} nothing written
--   {'NO_PERMISSION', command, key}      nothing written
--   {'STAGE_UNSET'} | {'EPOCH_CHANGED'}  managed mode: nothing written
--
-- Every check runs before the first write.

-- @include stage.v2.lua
-- @include checks.v1.lua

local function run()
  local expiriesKey, processingKey, claimsKey = KEYS[2], KEYS[3], KEYS[4]
  local jobs = (#KEYS - 4) / 3
  if jobs < 1 or jobs > 100 or jobs % 1 ~= 0 or #ARGV ~= 2 + 2 * jobs then
    return redis.error_reply('ERR sweep_expired takes 1 to 100 jobs of 3 keys and 2 arguments each')
  end
  local problem = wrongType(expiriesKey, 'zset') or wrongType(processingKey, 'zset') or wrongType(claimsKey, 'hash')
  if problem then return problem end
  local nowMs = tonumber(serverNowMs())

  local decisions = {}
  for i = 1, jobs do
    local legacyKey, newKey, indexKey = KEYS[3 * i + 2], KEYS[3 * i + 3], KEYS[3 * i + 4]
    local workspaceId, jobId = ARGV[2 * i + 1], ARGV[2 * i + 2]
    local member = workspaceId .. ':' .. jobId
    problem = wrongType(legacyKey, 'hash') or wrongType(newKey, 'hash') or wrongType(indexKey, 'zset')
    if problem then return problem end
    local due = tonumber(redis.call('ZSCORE', expiriesKey, member))
    if due and due <= nowMs then
      -- The latest expiry of the records still there: -1 when one stays for good, nil when none is left.
      local remaining = nil
      for _, key in ipairs({legacyKey, newKey}) do
        local owned = key == newKey or redis.call('HGET', key, 'workspace_id') == workspaceId
        if owned and redis.call('EXISTS', key) == 1 then
          local at = redis.call('PEXPIRETIME', key)
          if at < 0 or remaining == -1 then remaining = -1 elseif not remaining or at > remaining then remaining = at end
        end
      end
      decisions[#decisions + 1] = {member = member, jobId = jobId, indexKey = indexKey, remaining = remaining}
      problem = (remaining == nil and refused('ZREM', indexKey, jobId)) or refused('ZADD', expiriesKey, '0', member)
        or refused('ZREM', expiriesKey, member) or refused('ZREM', processingKey, member) or refused('HDEL', claimsKey, member)
      if problem then return problem end
    end
  end

  -- All checks passed; from here on only writes.
  local removed, rescheduled, kept = 0, 0, 0
  for _, decision in ipairs(decisions) do
    if decision.remaining == nil then
      redis.call('ZREM', decision.indexKey, decision.jobId)
      redis.call('ZREM', processingKey, decision.member)
      redis.call('HDEL', claimsKey, decision.member)
      redis.call('ZREM', expiriesKey, decision.member)
      removed = removed + 1
    elseif decision.remaining == -1 then
      redis.call('ZREM', expiriesKey, decision.member)
      kept = kept + 1
    else
      redis.call('ZADD', expiriesKey, decision.remaining, decision.member)
      rescheduled = rescheduled + 1
    end
  end
  return {'SWEPT', removed, rescheduled, kept}
end

return staged(run())
