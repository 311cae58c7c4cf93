#!lua
-- backfill_batch v3: copy a bounded batch of legacy jobs into the new layout. A record that already
-- exists in the new layout is never overwritten, except in resync mode, where the record updated
-- later wins: a legacy twin updated later (after a stay in off) replaces the new record, and a new
-- record updated later (after a stay in complete) is written over the legacy one, when the plan
-- writes the legacy layout (fields only the legacy record has are kept in both: the legacy service
-- may own them). A copied job joins its workspace index and expires at the legacy record's absolute
-- expiry time, to the millisecond.
--
-- @keys 1 + 3 per job (at most 500 jobs per call)
-- KEYS[1]    stageKey   hash  the layout's stage record (see the include below)
-- KEYS[3i-1] legacyKey  hash  job:<jobId>: written only by a resync, when the new record is newer
-- KEYS[3i]   newKey     hash  ws:<workspaceId>:job:<jobId>: written when absent (resync: when older)
-- KEYS[3i+1] indexKey   zset  ws:<workspaceId>:jobs: gains jobId at created_at (ZADD NX)
--
-- ARGV[1]    stage selector: '' static (plan in ARGV[2]), '*' managed, '<n>' managed at epoch n only
-- ARGV[2]    the plan in static mode (src/stages.ts planCode)
-- ARGV[3]    mode 'copy'|'resync'
-- ARGV[2i+2] workspaceId of job i, as the caller read it from the legacy record
-- ARGV[2i+3] jobId of job i
--
-- Replies (managed mode appends the epoch and the stage's name to each: see the stage include), one of:
--   {'OK', results}                     one result per job, in KEYS order (below)
--   {'NO_PERMISSION', command, key}     the ACL user may not run a write: nothing written
--   {'STAGE_UNSET'} | {'EPOCH_CHANGED'} managed mode: the run started under another epoch; nothing written
-- Each result: {outcome, detail}
--   {'copied', expiresAt}       new record created from the legacy one; expiresAt as PEXPIRETIME ('-1': none)
--   {'resynced', fields}        resync: the new record was older and is now the legacy record, or its
--                               expiry was not the legacy one's and now is; fields: the names that
--                               differed, sorted ({} when only the expiry did)
--   {'resynced_legacy', fields} resync: the legacy record was older and now holds the new record's
--                               fields and expiry; fields only it had stay, and join the new record
--   {'same', indexed}           the new record already equals the legacy one; indexed '1' when the
--                               job was missing from its index and was added
--   {'conflict', fields}        both exist and differ (resync: neither was updated later, or the
--                               newer is the new one and the plan does not write the legacy layout)
--   {'changed', ''}             the legacy record's workspace_id is no longer ARGV[2i+2]: not written
--   {'gone', ''}                the legacy key no longer exists: nothing to copy
--   {'bad_created_at', ''}      created_at is not a decimal number of ms, so the job cannot be
--                               indexed: not written (the same rule the caller applies)
--   {'wrongtype', key}          a key of this job holds another type: not written
--
-- Every job's outcome is decided before the first write: Redis keeps the writes a failing script
-- already made. The shebang (no no-writes flag) makes an over-maxmemory server refuse the call.

-- @include stage.v2.lua

local function run()
  local jobCount = (#KEYS - 1) / 3
  if jobCount < 1 or jobCount > 500 or jobCount % 1 ~= 0 or #ARGV ~= 3 + 2 * jobCount then
    return redis.error_reply('ERR backfill_batch takes the stage key and 1 to 500 jobs of 3 keys and 2 arguments each')
  end
  local resync = ARGV[3] == 'resync'

  local function keyType(key)
    return redis.call('TYPE', key)['ok']
  end

  local function record(key)
    local flat = redis.call('HGETALL', key)
    local byName = {}
    for i = 1, #flat, 2 do byName[flat[i]] = flat[i + 1] end
    return flat, byName
  end

  local function differingFields(a, b)
    local names = {}
    for name, value in pairs(a) do
      if b[name] ~= value then names[#names + 1] = name end
    end
    for name in pairs(b) do
      if a[name] == nil then names[#names + 1] = name end
    end
    table.sort(names)
    return names
  end

  -- A valid created_at: a decimal number of ms, as src/migrate/legacy-record.ts defines it.
  local function validCreatedAt(value)
    return value ~= nil and (string.match(value, '^%d+$') or string.match(value, '^%d+%.%d+$')) ~= nil
  end

  -- Phase 1: decide every job's outcome; nothing is written here.
  local results, writes = {}, {}
  for job = 1, jobCount do
    local legacyKey, newKey, indexKey = KEYS[3 * job - 1], KEYS[3 * job], KEYS[3 * job + 1]
    local workspaceId, jobId = ARGV[2 * job + 2], ARGV[2 * job + 3]
    local legacyType, newType, indexType = keyType(legacyKey), keyType(newKey), keyType(indexKey)
    local result, write
    if legacyType == 'none' then
      result = {'gone', ''}
    elseif legacyType ~= 'hash' then
      result = {'wrongtype', legacyKey}
    elseif newType ~= 'none' and newType ~= 'hash' then
      result = {'wrongtype', newKey}
    elseif indexType ~= 'none' and indexType ~= 'zset' then
      result = {'wrongtype', indexKey}
    else
      local legacyFlat, legacy = record(legacyKey)
      local expiresAt = redis.call('PEXPIRETIME', legacyKey)
      if legacy['workspace_id'] ~= workspaceId then
        result = {'changed', ''}
      elseif not validCreatedAt(legacy['created_at']) then
        result = {'bad_created_at', ''}
      elseif newType == 'none' then
        result = {'copied', tostring(expiresAt)}
        write = {action = 'copy', flat = legacyFlat, createdAt = legacy['created_at'], expiresAt = expiresAt}
      else
        local _, new = record(newKey)
        local differing = differingFields(legacy, new)
        if #differing == 0 then
          local indexed = redis.call('ZSCORE', indexKey, jobId) == false
          if resync and redis.call('PEXPIRETIME', newKey) ~= expiresAt then
            result = {'resynced', {}}
            write = {action = 'expiry', createdAt = legacy['created_at'], expiresAt = expiresAt}
          else
            result = {'same', indexed and '1' or '0'}
            if indexed then write = {action = 'index', createdAt = legacy['created_at']} end
          end
        elseif resync and tonumber(legacy['updated_at']) and tonumber(new['updated_at'])
          and tonumber(legacy['updated_at']) > tonumber(new['updated_at']) then
          result = {'resynced', differing}
          write = {action = 'replace', flat = legacyFlat, createdAt = legacy['created_at'], expiresAt = expiresAt}
        elseif resync and writeLegacy and tonumber(legacy['updated_at']) and tonumber(new['updated_at'])
          and tonumber(new['updated_at']) > tonumber(legacy['updated_at']) then
          result = {'resynced_legacy', differing}
          -- The legacy record keeps the fields only it has (the legacy service may write and read
          -- them) and the new record gains them, so both end equal and nothing is dropped.
          local newFlat, newRecord = record(newKey)
          local extras = {}
          for name, value in pairs(legacy) do
            if newRecord[name] == nil then
              extras[#extras + 1] = name
              extras[#extras + 1] = value
            end
          end
          write = {action = 'merge', target = legacyKey, flat = newFlat, extras = extras,
                   createdAt = legacy['created_at'], expiresAt = redis.call('PEXPIRETIME', newKey)}
        else
          result = {'conflict', differing}
        end
      end
    end
    if write then
      -- The record written: the new one, but for a resync the legacy record lost.
      write.target, write.newKey, write.indexKey, write.jobId = write.target or newKey, newKey, indexKey, jobId
      writes[#writes + 1] = write
    end
    results[job] = result
  end

  -- Redis checks ACLs at each command, so ask about every write before the first one.
  for _, write in ipairs(writes) do
    local checks = {{'ZADD', write.indexKey, 'NX', '0', write.jobId}}
    if write.flat then checks[#checks + 1] = {'HSET', write.target, 'f', 'v'} end
    if write.action == 'replace' then checks[#checks + 1] = {'DEL', write.target} end
    if write.extras and #write.extras > 0 then checks[#checks + 1] = {'HSET', write.newKey, 'f', 'v'} end
    if write.expiresAt and write.expiresAt > 0 then checks[#checks + 1] = {'PEXPIREAT', write.target, '1'} end
    if (write.action == 'expiry' or write.action == 'merge') and write.expiresAt < 0 then checks[#checks + 1] = {'PERSIST', write.target} end
    for _, check in ipairs(checks) do
      if not redis.acl_check_cmd(unpack(check)) then return {'NO_PERMISSION', check[1], check[2]} end
    end
  end

  -- Phase 2: all checks passed; from here on only writes.
  for _, write in ipairs(writes) do
    -- A replaced new record loses the fields the newer legacy one lacks, so both layouts end equal.
    if write.action == 'replace' then redis.call('DEL', write.target) end
    if write.flat then redis.call('HSET', write.target, unpack(write.flat)) end
    if write.extras and #write.extras > 0 then redis.call('HSET', write.newKey, unpack(write.extras)) end
    if write.expiresAt and write.expiresAt > 0 then
      redis.call('PEXPIREAT', write.target, write.expiresAt)
    elseif write.action == 'expiry' or write.action == 'merge' then
      redis.call('PERSIST', write.target)
    end
    redis.call('ZADD', write.indexKey, 'NX', write.createdAt, write.jobId)
  end

  return {'OK', results}
end

return staged(run())
