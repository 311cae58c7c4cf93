-- job v1 (an include, not a script; after stage.v2 and checks.v1): how a script finds one job's
-- record in the layouts the plan writes, repairs the layout that lacks it, and finds its claim.
-- update_status_dual, claim_job and requeue_job decide the same way, so it is written once.
-- Written for the server's time as much as for the reader: every function here is made anew on
-- each call of a script that includes it, and every redis.call, every table and every value a
-- reply carries costs more than the Lua around it, so the common path makes as few as it can.

-- Where locateJob's records hold each field: a job's status and updated_at, and, read from the
-- plan's read origin only, the lifecycle fields a worker's steps change after the job is made (the
-- other copy takes them from there, see writeJob).
local STATUS, UPDATED_AT, ATTEMPTS, ERROR, RESULT = 1, 2, 3, 4, 5

-- Where the job's record is, each layout the plan writes read once (HMGET), or nil and the
-- WRONGTYPE reply when one of them holds another type. A legacy key is global (job:<jobId>): it is
-- this workspace's only when its workspace_id says so ('ours'), else 'foreign' (never read or
-- written for this job) or 'absent'. `source` is the record a change starts from (the plan's read
-- origin when both hold it) and `record` its fields; `legacyRecord` and `newRecord` the fields of
-- the copies the change writes (nil when absent); `repaired` the layout a repair restores: 'new',
-- 'legacy' or 'none' (both hold the job, the plan writes one layout, or the legacy key is another
-- workspace's).
local function locateJob(legacyKey, newKey, workspaceId)
  local job = {legacy = 'absent', repaired = 'none', legacyKey = legacyKey, newKey = newKey,
    legacyRecord = false, newRecord = false, source = false, record = false, legacyWritten = false}
  if writeLegacy then
    local values
    if readFrom == 'legacy' then
      values = redis.pcall('HMGET', legacyKey, 'status', 'updated_at', 'attempts', 'error', 'result', 'workspace_id')
    else
      values = redis.pcall('HMGET', legacyKey, 'status', 'updated_at', 'workspace_id')
    end
    if values['err'] then return nil, readFailure(legacyKey, 'hash', values) end
    local owner = values[#values]
    if owner == workspaceId then
      job.legacy, job.legacyRecord = 'ours', values
    -- A hash without these fields still exists: a record of the legacy service's own making.
    elseif owner or values[STATUS] or values[UPDATED_AT] or redis.call('EXISTS', legacyKey) == 1 then
      job.legacy = 'foreign'
    end
  end
  if writeNew then
    local values
    if readFrom == 'new' then
      values = redis.pcall('HMGET', newKey, 'status', 'updated_at', 'attempts', 'error', 'result')
    else
      values = redis.pcall('HMGET', newKey, 'status', 'updated_at')
    end
    if values['err'] then return nil, readFailure(newKey, 'hash', values) end
    if values[STATUS] or values[UPDATED_AT] or redis.call('EXISTS', newKey) == 1 then job.newRecord = values end
  end
  -- A plan that writes the new layout only (complete) no longer writes the legacy layout, but a twin
  -- the job already has there (made before, not yet removed by cleanup) follows the job's changes
  -- while its new record exists: a step back from complete then finds both records level, and
  -- needs no resync. A key of another type or workspace is no twin.
  local twinFollows = writeNew and not writeLegacy
  if twinFollows and job.newRecord then
    local values = redis.pcall('HMGET', legacyKey, 'status', 'updated_at', 'workspace_id')
    -- Another type is no twin; any other error (an ACL refusal) is raised, as redis.call would.
    if values['err'] and string.sub(values['err'], 1, 9) ~= 'WRONGTYPE' then error(values) end
    if not values['err'] and values[3] == workspaceId then job.legacy, job.legacyRecord = 'ours', values end
  end
  local both = writeLegacy and writeNew
  if job.legacyRecord and job.newRecord then
    job.source = (readFrom == 'legacy') and legacyKey or newKey
  elseif job.legacyRecord then
    job.source = legacyKey
    if both then job.repaired, job.copyFrom, job.copyTo = 'new', legacyKey, newKey end
  elseif job.newRecord then
    job.source = newKey
    if both and job.legacy == 'absent' then job.repaired, job.copyFrom, job.copyTo = 'legacy', newKey, legacyKey end
  end
  job.record = (job.source == legacyKey) and job.legacyRecord or job.newRecord
  job.legacyWritten = (writeLegacy and job.legacy ~= 'foreign') or (twinFollows and job.legacy == 'ours')
  -- A repair copies the absolute expiry too, so both copies expire at the same millisecond.
  if job.copyFrom then job.expiresAt = redis.call('PEXPIRETIME', job.copyFrom) end
  return job
end

-- The ACL checks of what a change of the job writes: the fields of each layout the plan writes, and
-- a repair's copy, expiry and index entry.
local function jobWritesRefused(job, indexKey, jobId)
  return (job.legacyWritten and refused('HSET', job.legacyKey, 'f', 'v'))
    or (writeNew and refused('HSET', job.newKey, 'f', 'v'))
    or (job.repaired == 'new' and refused('ZADD', indexKey, 'NX', '0', jobId))
    or (job.copyFrom and job.expiresAt > 0 and refused('PEXPIREAT', job.copyTo, '1'))
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

-- Sets status, the fields in `more` (a flat name, value list, or nil) and updated_at in every layout
-- the plan writes the job in, and returns the updated_at written. That is the server's now, but
-- always after what the copies written hold: two writes in one millisecond, one of them to one
-- layout only (in complete), still leave the copy written last the newer, which resync and the
-- reads go by. (A repair's copy holds the source's updated_at, so the records locateJob read answer
-- for it too.) When both copies exist, the other copy also takes the source's lifecycle fields the
-- write does not set: a copy left behind by another stage comes level with the source, not half
-- level. Nothing is deleted from either copy: a field only the other copy has may be the legacy
-- service's own.
local function writeJob(job, nowMs, status, more)
  -- updated_at as every writer stores it, decimal ms of the same length as now, is older when its
  -- text sorts first; only another text is compared as a number (tonumber, strtod, costs more than
  -- the rest of this function).
  local stamp = nowMs
  local legacyAt = job.legacyWritten and job.legacyRecord and job.legacyRecord[UPDATED_AT]
  local newAt = writeNew and job.newRecord and job.newRecord[UPDATED_AT]
  if (legacyAt and not (#legacyAt == #nowMs and legacyAt < nowMs)) or (newAt and not (#newAt == #nowMs and newAt < nowMs)) then
    local latest = math.max(tonumber(legacyAt) or 0, tonumber(newAt) or 0)
    if latest >= tonumber(nowMs) then stamp = string.format('%.0f', latest + 1) end
  end

  local record = job.record
  local levelling = job.legacyWritten and writeNew and job.repaired == 'none'
    and (record[ATTEMPTS] or record[ERROR] or record[RESULT])
  if not more and not levelling then
    if job.legacyWritten then redis.call('HSET', job.legacyKey, 'status', status, 'updated_at', stamp) end
    if writeNew then redis.call('HSET', job.newKey, 'status', status, 'updated_at', stamp) end
    return stamp
  end
  local fields = {'status', status, 'updated_at', stamp}
  for i = 1, more and #more or 0 do fields[#fields + 1] = more[i] end
  if levelling then
    local names = {[ATTEMPTS] = 'attempts', [ERROR] = 'error', [RESULT] = 'result'}
    for position = ATTEMPTS, RESULT do
      local name, value, set = names[position], record[position], false
      for i = 1, more and #more or 0, 2 do set = set or more[i] == name end
      if value and not set then
        fields[#fields + 1] = name
        fields[#fields + 1] = value
      end
    end
  end
  if job.legacyWritten then redis.call('HSET', job.legacyKey, unpack(fields)) end
  if writeNew then redis.call('HSET', job.newKey, unpack(fields)) end
  return stamp
end

-- The claim of this workspace's job: its entry (bare while the legacy layout is written, else
-- prefixed; either may be left from another stage) and the worker holding it, or nil; the WRONGTYPE
-- reply second when the claims key holds another type. A claim record names the workspace, so
-- another workspace's job of the same id is never this one.
local function findClaim(claimsKey, workspaceId, jobId)
  local entry = jobId
  for _ = 1, 2 do
    local claim = redis.pcall('HGET', claimsKey, entry)
    if type(claim) == 'table' then return nil, readFailure(claimsKey, 'hash', claim) end
    local claimedAt, _, claimWorkspace, worker = string.match(claim or '', '^(%d+):(%d+):([^:]*):(.*)$')
    if claimWorkspace == workspaceId then return {entry = entry, worker = worker, claimedAt = claimedAt} end
    entry = workspaceId .. ':' .. jobId
  end
end

-- The queue entry of this job, if it waits within the first `depth` entries (0: the whole queue):
-- the named form, or the bare jobId when job:<jobId> is this workspace's (a bare entry is found
-- through it); the WRONGTYPE reply second when the queue key holds another type. The form the stage
-- puts on the queue is looked for first (found at once when the job waits at the head), then the
-- other, which another stage may have left. Bounded, so a deeper entry is not found: a claim drops
-- it later (or, once the job is gone, sets it aside).
local function waitingEntry(queueKey, job, workspaceId, jobId, depth)
  local named = workspaceId .. ':' .. jobId
  -- locateJob knows whose job:<jobId> is, in complete too (the twin), and a bare entry leads only
  -- to this workspace's.
  local first, second = named, nil
  if job.legacy == 'ours' then
    if writeLegacy then first, second = jobId, named else second = jobId end
  end
  local at = redis.pcall('LPOS', queueKey, first, 'MAXLEN', depth)
  if type(at) == 'table' then return nil, readFailure(queueKey, 'list', at) end
  if at then return first end
  if second and redis.call('LPOS', queueKey, second, 'MAXLEN', depth) then return second end
end
