#!lua
-- enqueue_dual v3: create one job in the layouts the stage writes, push it on the queue, index it,
-- and remember the idempotency key, all in one atomic step.
--
-- @keys 6
-- KEYS[1] stageKey        hash    the layout's stage record (see the include below)
-- KEYS[2] idempotencyKey  string  "<fingerprint>:<jobId>"; untouched when ARGV[7] is ''
-- KEYS[3] legacyKey       hash    job:<jobId>; must be free in every stage, written only when the plan
--                                 writes the legacy layout
-- KEYS[4] newKey          hash    ws:<workspaceId>:job:<jobId>; untouched unless the plan writes the new layout
-- KEYS[5] queueKey        list    RPUSH of the job's entry: the bare jobId while the legacy layout is
--                                 written, else "<workspaceId>:<jobId>"
-- KEYS[6] indexKey        zset    member jobId, score created_at (ms)
--
-- ARGV[1] stage selector: '' static (plan in ARGV[2]), '*' managed, '<n>' managed at epoch n only
-- ARGV[2] the plan in static mode (src/stages.ts planCode)
-- ARGV[3] jobId            ARGV[4] workspaceId      ARGV[5] type        ARGV[6] payload (JSON)
-- ARGV[7] fingerprint of the request ('' = no idempotency key)
-- ARGV[8] idempotency TTL in seconds
-- ARGV[9] the idempotency key as the caller gave it, kept on the job (delete_job removes the key with it)
--
-- Replies (managed mode appends the epoch and the stage's name to each: see the stage include), one of:
--   {'CREATED', jobId, createdAtMs}
--   {'REPLAY', originalJobId}               same idempotency key, same request: nothing written, TTL kept
--   {'IDEMPOTENCY_CONFLICT', originalJobId} same idempotency key, different request: nothing written
--   {'DUPLICATE', layout}                   the jobId exists in 'legacy' or 'new': nothing written.
--                                           The legacy key is global, so a jobId it holds is refused
--                                           even where the stage does not write it (complete): a
--                                           rollback would bring both jobs back under one key
--   {'WRONGTYPE', key, expected, actual}    a key holds another type: nothing written
--   {'NO_PERMISSION', command, key}         the ACL user may not run a write: nothing written
--   {'STAGE_UNSET'} | {'EPOCH_CHANGED'}     managed mode: no stage record, or another epoch: nothing written
--
-- Every check runs before the first write: Redis keeps the writes a failing script already made.
-- The queue push is the first write and checks itself (see below). The shebang (no no-writes flag)
-- makes an over-maxmemory server refuse the call before it starts.

-- @include stage.v2.lua

local function run()
  local idempotencyKey, legacyKey, newKey, queueKey, indexKey = KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
  local jobId, workspaceId, jobType, payload = ARGV[3], ARGV[4], ARGV[5], ARGV[6]
  local fingerprint, idempotencyTtl, givenKey = ARGV[7], ARGV[8], ARGV[9]
  local remembering = fingerprint ~= ''

  -- A reply saying `key` holds another type than `expected`, or nil when it holds that type or nothing.
  local function wrongType(key, expected, actual)
    actual = actual or redis.call('TYPE', key)['ok']
    if actual ~= 'none' and actual ~= expected then return {'WRONGTYPE', key, expected, actual} end
  end

  local problem = wrongType(indexKey, 'zset')
  if problem then return problem end

  if remembering then
    -- GET answers both questions, the key's type and what it remembers; pcall keeps a wrong type
    -- from ending the script with Redis' own error.
    local remembered = redis.pcall('GET', idempotencyKey)
    if type(remembered) == 'table' then return wrongType(idempotencyKey, 'string') end
    if remembered then
      local rememberedFingerprint, originalJobId = string.match(remembered, '^(%x+):(.+)$')
      if rememberedFingerprint == fingerprint then return {'REPLAY', originalJobId} end
      return {'IDEMPOTENCY_CONFLICT', originalJobId or ''}
    end
  end

  -- One EXISTS tells whether the jobId is free in every layout it must be free in; only a taken one
  -- costs a TYPE per key, which tells a duplicate ('hash') from a key of another type.
  local taken = writeNew and redis.call('EXISTS', legacyKey, newKey) or redis.call('EXISTS', legacyKey)
  if taken > 0 then
    for _, candidate in ipairs(writeNew and {{legacyKey, 'legacy'}, {newKey, 'new'}} or {{legacyKey, 'legacy'}}) do
      local actual = redis.call('TYPE', candidate[1])['ok']
      if actual == 'hash' then return {'DUPLICATE', candidate[2]} end
      problem = wrongType(candidate[1], 'hash', actual)
      if problem then return problem end
    end
  end

  -- Redis checks ACLs at each command, so a user allowed these reads but not a later write would
  -- leave the writes before it behind: ask about every write first.
  local function refused(command, key, ...)
    if not redis.acl_check_cmd(command, key, ...) then return {'NO_PERMISSION', command, key} end
  end
  problem = (writeLegacy and refused('HSET', legacyKey, 'f', 'v'))
    or (writeNew and refused('HSET', newKey, 'f', 'v'))
    or refused('ZADD', indexKey, '0', jobId)
    or (remembering and refused('SET', idempotencyKey, 'v', 'EX', idempotencyTtl))
  if problem then return problem end

  local time = redis.call('TIME')
  local nowMs = time[1] .. string.format('%03d', math.floor(tonumber(time[2]) / 1000))

  -- The first write is its own check: when Redis refuses it (a queue key of another type, an ACL
  -- that denies it), nothing has been written yet. The checks above cover every write after it.
  local queueEntry = writeLegacy and jobId or (workspaceId .. ':' .. jobId)
  local pushed = redis.pcall('RPUSH', queueKey, queueEntry)
  if type(pushed) == 'table' and pushed['err'] then
    if string.find(pushed['err'], '^WRONGTYPE') then return wrongType(queueKey, 'list') end
    if not redis.acl_check_cmd('RPUSH', queueKey, queueEntry) then return {'NO_PERMISSION', 'RPUSH', queueKey} end
    return redis.error_reply(pushed['err'])
  end

  -- The fields go to HSET as arguments, not through a table and unpack: this is the hot path.
  local function writeJob(key)
    if remembering then
      redis.call('HSET', key, 'id', jobId, 'workspace_id', workspaceId, 'type', jobType, 'payload', payload,
        'status', 'queued', 'created_at', nowMs, 'updated_at', nowMs, 'idempotency_key', givenKey)
    else
      redis.call('HSET', key, 'id', jobId, 'workspace_id', workspaceId, 'type', jobType, 'payload', payload,
        'status', 'queued', 'created_at', nowMs, 'updated_at', nowMs)
    end
  end
  if writeLegacy then writeJob(legacyKey) end
  if writeNew then writeJob(newKey) end
  redis.call('ZADD', indexKey, nowMs, jobId)
  if remembering then
    redis.call('SET', idempotencyKey, fingerprint .. ':' .. jobId, 'EX', idempotencyTtl)
  end

  return {'CREATED', jobId, nowMs}
end

return staged(run())
