#!lua flags=no-writes
-- confirm_orphans v2: re-check, in one atomic snapshot, queue or processing entries that looked as
-- if they lead to no job. An entry is confirmed only when it is still where it was seen and its job
-- is still not to be found, so an entry a worker took, or a job whose writer made the entry first,
-- is never reported. Reads only.
--
-- @keys 1 + 3 per job (a job here is an entry to confirm; at most 500 per call)
-- KEYS[1]    stageKey      hash       the layout's stage record (see the include below)
-- KEYS[3i-1] containerKey  list|zset  the queue (a list) or the processing set (a zset) holding the entry
-- KEYS[3i]   legacyKey     hash       job:<jobId> the entry names (a stand-in when it names no valid id)
-- KEYS[3i+1] newKey        hash       ws:<workspaceId>:job:<jobId> (a stand-in when no workspace is known)
--
-- ARGV[1]    stage selector: '' static (plan in ARGV[2]), '*' managed, '<n>' managed at epoch n only
-- ARGV[2]    the plan in static mode (src/stages.ts planCode): while it writes the legacy layout, a
--            legacy record is itself the job; after that it only locates the new one
-- ARGV[4i-1] entry, as the container holds it
-- ARGV[4i]   the entry's rank when it was seen (a list entry only moves towards the head, so looking
--            that far is enough)
-- ARGV[4i+1] 'bare' (the entry is the jobId: found through its legacy record) or 'named' (the entry
--            names its workspace: found through its new record)
-- ARGV[4i+2] the workspace the legacy record named when the entry was seen ('' for none)
--
-- Replies (managed mode appends the epoch and the stage's name to each: see the stage include), one of
-- {'STAGE_UNSET'}, {'EPOCH_CHANGED'} (managed mode), or:
--   {'OK', confirmed}   one '1' (still an orphan) or '0' per entry, in KEYS order

-- @include stage.v2.lua

local function run()
  local entries = (#KEYS - 1) / 3
  if entries < 1 or entries > 500 or entries % 1 ~= 0 or #ARGV ~= 2 + 4 * entries then
    return redis.error_reply('ERR confirm_orphans takes the stage key and 1 to 500 entries of 3 keys and 4 arguments each')
  end
  local legacyIsJob = writeLegacy

  local function keyType(key)
    return redis.call('TYPE', key)['ok']
  end

  local function stillThere(container, entry, rank)
    local kind = keyType(container)
    if kind == 'list' then return redis.call('LPOS', container, entry, 'MAXLEN', rank + 1) ~= false end
    if kind == 'zset' then return redis.call('ZSCORE', container, entry) ~= false end
    return false
  end

  -- Whether a consumer would find the job now, by the same rules the caller applied.
  local function found(legacyKey, newKey, form, seenWorkspace)
    if form == 'named' then return keyType(newKey) == 'hash' end
    if keyType(legacyKey) ~= 'hash' then return false end
    local workspaceId = redis.call('HGET', legacyKey, 'workspace_id')
    if not workspaceId then return false end
    if legacyIsJob then return true end
    -- In complete the legacy record only locates the new one: the same workspace, then its record.
    if workspaceId ~= seenWorkspace then return true end
    return keyType(newKey) == 'hash'
  end

  local confirmed = {}
  for i = 1, entries do
    local container, legacyKey, newKey = KEYS[3 * i - 1], KEYS[3 * i], KEYS[3 * i + 1]
    local entry, rank, form, seenWorkspace = ARGV[4 * i - 1], tonumber(ARGV[4 * i]), ARGV[4 * i + 1], ARGV[4 * i + 2]
    local orphan = stillThere(container, entry, rank) and not found(legacyKey, newKey, form, seenWorkspace)
    confirmed[i] = orphan and '1' or '0'
  end
  return {'OK', confirmed}
end

return staged(run())
