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
-- Every answer but the rare refusals of a write (a queue or index key of another type, an ACL that
-- denies a write) is decided before the first write: Redis keeps the writes a failing script
-- already made. Each write checks itself instead: when Redis refuses one, the script undoes the
-- writes before it (LREM of its entry from the queue's tail, DEL of the keys it created), whose
-- permission it asked before writing, and answers as a check before any write would have. Nothing
-- is then left, but the writes and their undo are seen by what watches commands (MONITOR, keyspace
-- notifications, a WATCH on those keys, replicas and the AOF): see the README. That spares a TYPE
-- of the index and an ACL check per write on every call. The shebang (no no-writes flag) makes an
-- over-maxmemory server refuse the call before it starts.

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

  local problem
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

  -- Every write checks itself (see the header): a refused one undoes those before it. The undo
  -- is LREM of the entry from the queue's tail and DEL of the keys this call creates (each was free
  -- above), and Redis checks ACLs at each command: ask about the undo before the first write.
  local queueEntry = writeLegacy and jobId or (workspaceId .. ':' .. jobId)
  local created = {}
  if writeLegacy then created[#created + 1] = legacyKey end
  if writeNew then created[#created + 1] = newKey end
  if remembering then created[#created + 1] = idempotencyKey end
  if not redis.acl_check_cmd('DEL', unpack(created)) then return {'NO_PERMISSION', 'DEL', created[1]} end
  if not redis.acl_check_cmd('LREM', queueKey, '-1', queueEntry) then return {'NO_PERMISSION', 'LREM', queueKey} end

  -- nil when `written` (a pcall's reply) is not an error; else, once the writes before it are
  -- undone (`pushed`: whether the entry is on the queue), the refusal as a check would answer it.
  local function refusal(written, pushed, key, expected, ...)
    if type(written) ~= 'table' or not written['err'] then return nil end
    if pushed then
      redis.call('LREM', queueKey, -1, queueEntry)
      redis.call('DEL', unpack(created))
    end
    if string.find(written['err'], '^WRONGTYPE') then return wrongType(key, expected) end
    if not redis.acl_check_cmd(...) then return {'NO_PERMISSION', (...), key} end
    return redis.error_reply(written['err'])
  end

  local time = redis.call('TIME')
  local nowMs = time[1] .. string.format('%03d', math.floor(tonumber(time[2]) / 1000))

  problem = refusal(redis.pcall('RPUSH', queueKey, queueEntry), false, queueKey, 'list', 'RPUSH', queueKey, queueEntry)
  if problem then return problem end
  -- The fields go to HSET as arguments, not through a table and unpack: this is the hot path.
  local function writeJob(key)
    if remembering then
      return redis.pcall('HSET', key, 'id', jobId, 'workspace_id', workspaceId, 'type', jobType, 'payload', payload,
        'status', 'queued', 'created_at', nowMs, 'updated_at', nowMs, 'idempotency_key', givenKey)
    end
    return redis.pcall('HSET', key, 'id', jobId, 'workspace_id', workspaceId, 'type', jobType, 'payload', payload,
      'status', 'queued', 'created_at', nowMs, 'updated_at', nowMs)
  end
  problem = (writeLegacy and refusal(writeJob(legacyKey), true, legacyKey, 'hash', 'HSET', legacyKey, 'f', 'v'))
    or (writeNew and refusal(writeJob(newKey), true, newKey, 'hash', 'HSET', newKey, 'f', 'v'))
    or (remembering and refusal(redis.pcall('SET', idempotencyKey, fingerprint .. ':' .. jobId, 'EX', idempotencyTtl),
      true, idempotencyKey, 'string', 'SET', idempotencyKey, 'v', 'EX', idempotencyTtl))
    or refusal(redis.pcall('ZADD', indexKey, nowMs, jobId), true, indexKey, 'zset', 'ZADD', indexKey, nowMs, jobId)
  if problem then return problem end

  return {'CREATED', jobId, nowMs}
end

return staged(run())
