#!lua flags=no-writes
-- compare_layouts v3: for a bounded batch of jobs, say where each lives (legacy, new, index), which
-- fields its two records disagree on and when each expires, each job in one consistent snapshot, so
-- a dual write or update landing mid-check is never mistaken for a divergence. Reads only.
--
-- @keys 2 + 3 per job (at most 500 jobs per call)
-- KEYS[1]    stageKey     hash  the layout's stage record (see the include below)
-- KEYS[2]    expiriesKey  zset  queue:<name>:expiries, "<workspaceId>:<jobId>" -> when retention removes it (ms)
-- KEYS[3i]   legacyKey    hash  job:<jobId>
-- KEYS[3i+1] newKey       hash  ws:<workspaceId>:job:<jobId>
-- KEYS[3i+2] indexKey     zset  ws:<workspaceId>:jobs
--
-- ARGV[1]    stage selector: '' static (plan in ARGV[2]), '*' managed, '<n>' managed at epoch n only
-- ARGV[2]    the plan in static mode (src/stages.ts planCode)
-- ARGV[3]    compareFields '1'|'0': also read both records whole, name the fields that differ, and
--            read both absolute expiry times
-- ARGV[2i+2] workspaceId of job i
-- ARGV[2i+3] jobId of job i
--
-- Replies (managed mode appends the epoch and the stage's name to each: see the stage include), one of
-- {'STAGE_UNSET'}, {'EPOCH_CHANGED'} (managed mode), or:
--   {'OK', results}   one result per job, in KEYS order:
--                     {legacy, new, indexed, differingFields, legacyExpiresAt, newExpiresAt, expired}
--     legacy           'none' | 'ours' (its workspace_id is ARGV[2i+2]) | 'foreign' | another key type
--     new              'none' | 'hash' | another key type
--     indexed          '1' | '0' ('0' too when the index key holds another type)
--     differingFields  names of the fields whose values differ, sorted ({} unless both are hashes
--                      of this workspace and ARGV[3] is '1')
--     legacyExpiresAt, newExpiresAt  PEXPIRETIME of each record: ms since the epoch, -1 for none
--                      (both -1 unless differingFields was read)
--     expired          '1' when retention's time for the job has come (the expiries set, server time):
--                      its records are gone, or about to be, and the sweep has yet to take its entries
-- A legacy key is global (job:<jobId>): one whose workspace_id is another workspace's is not this
-- job's legacy record.

-- @include stage.v2.lua

local function run()
  local jobCount = (#KEYS - 2) / 3
  if jobCount < 1 or jobCount > 500 or jobCount % 1 ~= 0 or #ARGV ~= 3 + 2 * jobCount then
    return redis.error_reply('ERR compare_layouts takes the stage and expiries keys and 1 to 500 jobs of 3 keys and 2 arguments each')
  end
  local expiriesKey = KEYS[2]
  local expiriesReadable = redis.call('TYPE', expiriesKey)['ok'] == 'zset'
  local time = redis.call('TIME')
  local nowMs = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
  local compareFields = ARGV[3] == '1'

  local function keyType(key)
    return redis.call('TYPE', key)['ok']
  end

  local function record(key)
    local flat = redis.call('HGETALL', key)
    local byName = {}
    for i = 1, #flat, 2 do byName[flat[i]] = flat[i + 1] end
    return byName
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

  local results = {}
  for job = 1, jobCount do
    local legacyKey, newKey, indexKey = KEYS[3 * job], KEYS[3 * job + 1], KEYS[3 * job + 2]
    local workspaceId, jobId = ARGV[2 * job + 2], ARGV[2 * job + 3]

    local legacy = keyType(legacyKey)
    if legacy == 'hash' then
      legacy = redis.call('HGET', legacyKey, 'workspace_id') == workspaceId and 'ours' or 'foreign'
    end
    local new = keyType(newKey)
    local indexed = '0'
    if keyType(indexKey) == 'zset' and redis.call('ZSCORE', indexKey, jobId) then indexed = '1' end

    local differing, legacyExpiresAt, newExpiresAt = {}, -1, -1
    if compareFields and legacy == 'ours' and new == 'hash' then
      differing = differingFields(record(legacyKey), record(newKey))
      legacyExpiresAt, newExpiresAt = redis.call('PEXPIRETIME', legacyKey), redis.call('PEXPIRETIME', newKey)
    end
    local expiresAt = expiriesReadable and tonumber(redis.call('ZSCORE', expiriesKey, workspaceId .. ':' .. jobId))
    local expired = (expiresAt and expiresAt <= nowMs) and '1' or '0'
    results[job] = {legacy, new, indexed, differing, legacyExpiresAt, newExpiresAt, expired}
  end
  return {'OK', results}
end

return staged(run())
