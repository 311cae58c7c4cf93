-- retention v1 (an include, not a script; after stage.v2, checks.v1 and job.v1): how long a finished
-- job stays, and the one absolute expiry every copy of it takes. update_status_dual applies it when
-- a job finishes; requeue_job takes it away.

-- How long a job in `status` stays, in seconds, or nil for good: the stage record's
-- retention_<status> in managed mode, else the caller's (static mode) from three arguments from
-- ARGV[first]: succeeded, failed, cancelled ('' = for good).
local function retentionSeconds(status, first)
  local offset = (status == 'succeeded' and 0) or (status == 'failed' and 1) or (status == 'cancelled' and 2)
  if not offset then return nil end
  local value = ARGV[first + offset]
  if ARGV[1] ~= '' then value = redis.call('HGET', KEYS[1], 'retention_' .. status) end
  local seconds = tonumber(value)
  if seconds and seconds > 0 then return seconds end
end

-- What retention does to the job: {keepSeconds, was, copies, member}; nil when it does nothing
-- (no retention, and the expiries set does not hold the job); the WRONGTYPE reply second when the
-- expiries key holds another type. keepSeconds nil takes an expiry away (was: the expiries set
-- holds the job). copies: every copy of the job that exists once the script's repair (if any) is
-- done; in complete the legacy twin too (locateJob finds it), or verify and cleanup would find a
-- legacy job whose new record is gone; in off (after a rollback) the new layout's stale twin too, or it would
-- outlive the job and come back, unfinished, once the stage moves forward.
local function retentionPlan(job, expiriesKey, workspaceId, jobId, keepSeconds)
  local member = workspaceId .. ':' .. jobId
  local score = redis.pcall('ZSCORE', expiriesKey, member)
  if type(score) == 'table' then return nil, readFailure(expiriesKey, 'zset', score) end
  if not keepSeconds and not score then return nil end
  local plan = {keepSeconds = keepSeconds, member = member, was = score ~= false, copies = {}}
  if job.legacy == 'ours' or job.repaired == 'legacy' then plan.copies[#plan.copies + 1] = job.legacyKey end
  if job.newRecord or job.repaired == 'new' then plan.copies[#plan.copies + 1] = job.newKey end
  if not writeNew and redis.call('TYPE', job.newKey)['ok'] == 'hash' then
    plan.copies[#plan.copies + 1] = job.newKey
  end
  return plan
end

local function retentionRefused(plan, expiriesKey)
  if not plan then return nil end
  local problem
  for _, key in ipairs(plan.copies) do
    problem = problem or (plan.keepSeconds and refused('PEXPIREAT', key, '1')) or (not plan.keepSeconds and refused('PERSIST', key))
  end
  if plan.keepSeconds then return problem or refused('ZADD', expiriesKey, '0', plan.member) end
  return problem or (plan.was and refused('ZREM', expiriesKey, plan.member))
end

-- Applies the plan; returns when the job expires (ms since the epoch), or '' for never.
local function applyRetention(plan, expiriesKey, nowMs)
  if not plan then return '' end
  if plan.keepSeconds then
    local expiresAt = string.format('%.0f', tonumber(nowMs) + plan.keepSeconds * 1000)
    for _, key in ipairs(plan.copies) do redis.call('PEXPIREAT', key, expiresAt) end
    redis.call('ZADD', expiriesKey, expiresAt, plan.member)
    return expiresAt
  end
  if plan.was then
    for _, key in ipairs(plan.copies) do redis.call('PERSIST', key) end
    redis.call('ZREM', expiriesKey, plan.member)
  end
  return ''
end
