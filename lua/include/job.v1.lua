-- job v1 (an include, not a script; after stage.v2 and checks.v1): how a script finds one job's
-- record in the layouts the plan writes, repairs the layout that lacks it, and finds its claim.
-- update_status_dual, claim_job and requeue_job decide the same way, so it is written once.

-- Where the job's record is. A legacy key is global (job:<jobId>): it is this workspace's only when
-- its workspace_id says so ('ours'), else 'foreign' (never read or written for this job) or
-- 'absent'. `source` is the record a change starts from (the plan's read origin when both hold it);
-- `repaired` the layout a repair restores: 'new', 'legacy' or 'none' (both hold the job, the plan
-- writes one layout, or the legacy key is another workspace's).
local function locateJob(legacyKey, newKey, workspaceId)
  local job = {legacy = 'absent', new = false, repaired = 'none'}
  if writeLegacy and redis.call('EXISTS', legacyKey) == 1 then
    job.legacy = redis.call('HGET', legacyKey, 'workspace_id') == workspaceId and 'ours' or 'foreign'
  end
  job.new = writeNew and redis.call('EXISTS', newKey) == 1
  local both = writeLegacy and writeNew
  if job.legacy == 'ours' and job.new then
    job.source = (readFrom == 'legacy') and legacyKey or newKey
  elseif job.legacy == 'ours' then
    job.source = legacyKey
    if both then job.repaired, job.copyFrom, job.copyTo = 'new', legacyKey, newKey end
  elseif job.new then
    job.source = newKey
    if both and job.legacy == 'absent' then job.repaired, job.copyFrom, job.copyTo = 'legacy', newKey, legacyKey end
  end
  job.legacyKey, job.newKey = legacyKey, newKey
  job.legacyWritten = writeLegacy and job.legacy ~= 'foreign'
  job.newWritten = writeNew
  -- A repair copies the absolute expiry too, so both copies expire at the same millisecond.
  job.expiresAt = job.copyFrom and redis.call('PEXPIRETIME', job.copyFrom) or -1
  return job
end

-- The ACL checks of what a change of the job writes: the fields of each layout the plan writes, and
-- a repair's copy, expiry and index entry.
local function jobWritesRefused(job, indexKey, jobId)
  return (job.legacyWritten and refused('HSET', job.legacyKey, 'f', 'v'))
    or (job.newWritten and refused('HSET', job.newKey, 'f', 'v'))
    or (job.repaired == 'new' and refused('ZADD', indexKey, 'NX', '0', jobId))
    or (job.expiresAt > 0 and refused('PEXPIREAT', job.copyTo, '1'))
end

-- The repair's writes: the whole record into the layout that lacks it, its expiry, and a copy into
-- the new layout indexed at its created_at.
local function repairJob(job, indexKey, jobId, nowMs)
  if not job.copyFrom then return end
  redis.call('HSET', job.copyTo, unpack(redis.call('HGETALL', job.copyFrom)))
  if job.expiresAt > 0 then redis.call('PEXPIREAT', job.copyTo, job.expiresAt) end
  if job.repaired == 'new' then
    local createdAt = redis.call('HGET', job.copyFrom, 'created_at')
    if not tonumber(createdAt) then createdAt = nowMs end
    redis.call('ZADD', indexKey, 'NX', createdAt, jobId)
  end
end

-- The fields a worker's steps change after a job is made, beside status and updated_at.
local LIFECYCLE_FIELDS = {'attempts', 'error', 'result'}

-- Sets fields (a flat name, value list) and updated_at in every layout the plan writes the job in,
-- and returns the updated_at written. That is the server's now, but always after what the copies
-- written hold: two writes in one millisecond, one of them to one layout only (in complete), still
-- leave the copy written last the newer, which resync and the reads go by. When both copies exist,
-- the other copy also takes the source's lifecycle fields the write does not set: a copy left behind
-- by another stage comes level with the source, not half level. Nothing is deleted from either copy:
-- a field only the other copy has may be the legacy service's own.
local function writeJob(job, nowMs, fields)
  local stamp = tonumber(nowMs)
  local function after(key)
    local written = tonumber(redis.call('HGET', key, 'updated_at'))
    if written and written >= stamp then stamp = written + 1 end
  end
  if job.legacyWritten then after(job.legacyKey) end
  if job.newWritten then after(job.newKey) end
  stamp = string.format('%.0f', stamp)
  fields[#fields + 1] = 'updated_at'
  fields[#fields + 1] = stamp
  if job.legacyWritten and job.newWritten and job.repaired == 'none' then
    local given = {}
    for i = 1, #fields, 2 do given[fields[i]] = true end
    local values = redis.call('HMGET', job.source, unpack(LIFECYCLE_FIELDS))
    for i, name in ipairs(LIFECYCLE_FIELDS) do
      if values[i] and not given[name] then
        fields[#fields + 1] = name
        fields[#fields + 1] = values[i]
      end
    end
  end
  if job.legacyWritten then redis.call('HSET', job.legacyKey, unpack(fields)) end
  if job.newWritten then redis.call('HSET', job.newKey, unpack(fields)) end
  return stamp
end

-- The claim of this workspace's job: its entry (bare while the legacy layout is written, else
-- prefixed; either may be left from another stage) and the worker holding it, or nil. A claim
-- record names the workspace, so another workspace's job of the same id is never this one.
local function findClaim(claimsKey, workspaceId, jobId)
  for _, entry in ipairs({jobId, workspaceId .. ':' .. jobId}) do
    local claim = redis.call('HGET', claimsKey, entry)
    local claimedAt, _, claimWorkspace, worker = string.match(claim or '', '^(%d+):(%d+):([^:]*):(.*)$')
    if claimWorkspace == workspaceId then return {entry = entry, worker = worker, claimedAt = claimedAt} end
  end
end

-- Whether job:<jobId> holds this workspace's job, asked whatever the plan (in complete its frozen
-- twin still expires with the job, and bare entries still lead to it); a key of another type is not.
local function legacyIsOurs(legacyKey, workspaceId)
  return redis.call('TYPE', legacyKey)['ok'] == 'hash' and redis.call('HGET', legacyKey, 'workspace_id') == workspaceId
end

-- An update that takes a job off 'queued' and does not find its entry near the head of a longer
-- queue marks the job (entry_unfound '1'): the entry may wait deeper, or a consumer of the legacy
-- service's kind popped it. A requeue of a marked job then looks through the whole queue before it pushes an entry, so no
-- job ever waits twice (or waits while claimed); a claim that drops that entry, and a delete, clear
-- the mark with the rest.
local ENTRY_UNFOUND = 'entry_unfound'

local function entryUnfound(job)
  return redis.call('HGET', job.source, ENTRY_UNFOUND) == '1'
end

local function clearEntryUnfoundRefused(job)
  return (job.legacyWritten and refused('HDEL', job.legacyKey, ENTRY_UNFOUND))
    or (job.newWritten and refused('HDEL', job.newKey, ENTRY_UNFOUND))
end

local function clearEntryUnfound(job)
  if job.legacyWritten then redis.call('HDEL', job.legacyKey, ENTRY_UNFOUND) end
  if job.newWritten then redis.call('HDEL', job.newKey, ENTRY_UNFOUND) end
end

-- The queue entry of this job, if it waits within the first `depth` entries (0: the whole queue): the named form, or the
-- bare jobId when job:<jobId> is this workspace's (a bare entry is found through it). Bounded, so a
-- deeper entry is not found: a claim drops it later (or, once the job is gone, sets it aside).
local function waitingEntry(queueKey, job, workspaceId, jobId, depth)
  local named = workspaceId .. ':' .. jobId
  if redis.call('LPOS', queueKey, named, 'MAXLEN', depth) then return named end
  if legacyIsOurs(job.legacyKey, workspaceId) and redis.call('LPOS', queueKey, jobId, 'MAXLEN', depth) then
    return jobId
  end
end
