#!lua
-- enqueue_many_dual v3: enqueue_dual for a batch, all or nothing: one refused job and nothing of
-- the batch is written. Replays return the original job like enqueue_dual, also when the same
-- idempotency key appears twice in the batch.
--
-- @keys 2 + 4 per job (at most 1000 jobs per call)
-- KEYS[1]    stageKey        hash    the layout's stage record (see the include below)
-- KEYS[2]    queueKey        list    RPUSH of every created job's entry, in batch order
-- KEYS[4i-1] idempotencyKey  string  of job i; untouched when its fingerprint is ''
-- KEYS[4i]   legacyKey       hash    job:<jobId>; must be free in every stage, written only when the
--                                    plan writes the legacy layout
-- KEYS[4i+1] newKey          hash    ws:<workspaceId>:job:<jobId>; untouched unless the plan writes it
-- KEYS[4i+2] indexKey        zset    ws:<workspaceId>:jobs
--
-- ARGV[1] stage selector: '' static (plan in ARGV[2]), '*' managed, '<n>' managed at epoch n only
-- ARGV[2] the plan in static mode (src/stages.ts planCode)
-- ARGV[3] idempotency TTL in seconds
-- then 6 per job i, from ARGV[6i-2]: jobId, workspaceId, type, payload (JSON), fingerprint ('' =
-- no idempotency key), the idempotency key as the caller gave it (kept on the job)
--
-- Replies (managed mode appends the epoch and the stage's name to each: see the stage include), one of:
--   {'OK', {jobId, created, jobId, created, ...}}   created: 1, or 0 for a replay (original jobId)
--   {'AT', i, <a refusal of enqueue_dual>}          job i (1-based) was refused: nothing written.
--        Refusals: {'IDEMPOTENCY_CONFLICT', originalJobId}, {'DUPLICATE', layout},
--        {'WRONGTYPE', key, expected, actual}, {'NO_PERMISSION', command, key}
--   {'STAGE_UNSET'} | {'EPOCH_CHANGED'}             managed mode: nothing written
--
-- Every check runs before the first write: Redis keeps the writes a failing script already made.
-- The queue push is the first write and checks itself.

-- @include stage.v2.lua

local function run()
  local queueKey, idempotencyTtl = KEYS[2], ARGV[3]
  local jobs = (#KEYS - 2) / 4
  if jobs < 1 or jobs > 1000 or jobs % 1 ~= 0 or #ARGV ~= 3 + 6 * jobs then
    return redis.error_reply('ERR enqueue_many_dual takes 1 to 1000 jobs, 4 keys and 6 arguments each')
  end

  local function kind(key)
    return redis.call('TYPE', key)['ok']
  end
  local function wrongType(key, expected)
    local actual = kind(key)
    if actual ~= 'none' and actual ~= expected then return {'WRONGTYPE', key, expected, actual} end
  end
  local function refused(command, key, ...)
    if not redis.acl_check_cmd(command, key, ...) then return {'NO_PERMISSION', command, key} end
  end

  local problem

  -- Decide every job first. Keys and keys claimed earlier in this batch count as taken.
  local remembered, taken, indexChecked = {}, {}, {}

  -- One EXISTS per job tells whether its jobId is free in every layout it must be free in (the
  -- legacy key is global, so also where the stage does not write it: see enqueue_dual). Only a taken
  -- key, or one an earlier job of this batch takes, costs a TYPE: a duplicate ('hash') or a key of
  -- another type.
  local function takenAs(key, layout)
    local actual = taken[key] and 'hash' or kind(key)
    if actual == 'hash' then return {'DUPLICATE', layout} end
    if actual ~= 'none' then return {'WRONGTYPE', key, 'hash', actual} end
  end
  local function free(legacyKey, newKey)
    local existing = writeNew and redis.call('EXISTS', legacyKey, newKey) or redis.call('EXISTS', legacyKey)
    if existing > 0 or taken[legacyKey] or (writeNew and taken[newKey]) then
      local problem = takenAs(legacyKey, 'legacy') or (writeNew and takenAs(newKey, 'new'))
      if problem then return problem end
    end
    if writeLegacy then taken[legacyKey] = true end
    if writeNew then taken[newKey] = true end
    return (writeLegacy and refused('HSET', legacyKey, 'f', 'v')) or (writeNew and refused('HSET', newKey, 'f', 'v'))
  end
  local created, replies = {}, {}
  for i = 1, jobs do
    local k, a = 4 * i - 1, 6 * i - 2
    local idempotencyKey, legacyKey, newKey, indexKey = KEYS[k], KEYS[k + 1], KEYS[k + 2], KEYS[k + 3]
    local jobId, fingerprint = ARGV[a], ARGV[a + 4]
    local replayOf

    if not indexChecked[indexKey] then
      problem = wrongType(indexKey, 'zset') or refused('ZADD', indexKey, '0', jobId)
      if problem then return {'AT', i, problem} end
      indexChecked[indexKey] = true
    end

    if fingerprint ~= '' then
      -- What the key remembers, as the key holds it ("<fingerprint>:<jobId>"), also for a key an
      -- earlier job of this batch takes.
      local earlier = remembered[idempotencyKey]
      if not earlier then
        earlier = redis.pcall('GET', idempotencyKey)
        if type(earlier) == 'table' then return {'AT', i, {'WRONGTYPE', idempotencyKey, 'string', kind(idempotencyKey)}} end
      end
      if earlier then
        local earlierFingerprint, originalJobId = string.match(earlier, '^(%x+):(.+)$')
        if earlierFingerprint ~= fingerprint then return {'AT', i, {'IDEMPOTENCY_CONFLICT', originalJobId or ''}} end
        replayOf = originalJobId
      else
        problem = refused('SET', idempotencyKey, 'v', 'EX', idempotencyTtl)
        if problem then return {'AT', i, problem} end
        remembered[idempotencyKey] = fingerprint .. ':' .. jobId
      end
    end

    if replayOf then
      replies[2 * i - 1], replies[2 * i] = replayOf, 0
    else
      problem = free(legacyKey, newKey)
      if problem then return {'AT', i, problem} end
      created[#created + 1] = i
      replies[2 * i - 1], replies[2 * i] = jobId, 1
    end
  end

  local time = redis.call('TIME')
  local nowMs = time[1] .. string.format('%03d', math.floor(tonumber(time[2]) / 1000))

  -- The queue push is the first write and its own check: when Redis refuses it (a queue key of
  -- another type, an ACL that denies it), nothing has been written yet. An entry is the bare jobId
  -- while the legacy layout is written, else "<workspaceId>:<jobId>".
  if #created > 0 then
    local entries = {}
    for n, i in ipairs(created) do
      local a = 6 * i - 2
      entries[n] = writeLegacy and ARGV[a] or (ARGV[a + 1] .. ':' .. ARGV[a])
    end
    local pushed = redis.pcall('RPUSH', queueKey, unpack(entries))
    if type(pushed) == 'table' and pushed['err'] then
      if string.find(pushed['err'], '^WRONGTYPE') then return {'AT', 1, {'WRONGTYPE', queueKey, 'list', kind(queueKey)}} end
      if not redis.acl_check_cmd('RPUSH', queueKey, 'e') then return {'AT', 1, {'NO_PERMISSION', 'RPUSH', queueKey}} end
      return redis.error_reply(pushed['err'])
    end
  end

  -- Job i's fields go to HSET as arguments, not through a table and unpack: this runs per job.
  local function writeJob(key, a, nowMs)
    if ARGV[a + 4] ~= '' then
      redis.call('HSET', key, 'id', ARGV[a], 'workspace_id', ARGV[a + 1], 'type', ARGV[a + 2], 'payload', ARGV[a + 3],
        'status', 'queued', 'created_at', nowMs, 'updated_at', nowMs, 'idempotency_key', ARGV[a + 5])
    else
      redis.call('HSET', key, 'id', ARGV[a], 'workspace_id', ARGV[a + 1], 'type', ARGV[a + 2], 'payload', ARGV[a + 3],
        'status', 'queued', 'created_at', nowMs, 'updated_at', nowMs)
    end
  end

  -- Index entries go in one ZADD per workspace index: members and scores, in batch order.
  local indexed, indexOrder = {}, {}
  for _, i in ipairs(created) do
    local k, a = 4 * i - 1, 6 * i - 2
    local jobId, fingerprint = ARGV[a], ARGV[a + 4]
    if writeLegacy then writeJob(KEYS[k + 1], a, nowMs) end
    if writeNew then writeJob(KEYS[k + 2], a, nowMs) end
    if fingerprint ~= '' then redis.call('SET', KEYS[k], remembered[KEYS[k]], 'EX', idempotencyTtl) end
    local indexKey = KEYS[k + 3]
    local members = indexed[indexKey]
    if not members then
      members = {}
      indexed[indexKey] = members
      indexOrder[#indexOrder + 1] = indexKey
    end
    members[#members + 1] = nowMs
    members[#members + 1] = jobId
  end
  for _, indexKey in ipairs(indexOrder) do redis.call('ZADD', indexKey, unpack(indexed[indexKey])) end

  return {'OK', replies}
end

return staged(run())
