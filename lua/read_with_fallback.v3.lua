#!lua flags=no-writes
-- read_with_fallback v3: read jobs of one workspace from the stage's read origin, fall back to the
-- legacy layout, and compare the two layouts, in one consistent snapshot. Reads only: it may run on
-- replicas and while the server is over maxmemory.
--
-- @keys 1 + 2 per job (at most 1000 jobs per call)
-- KEYS[1]    stageKey   hash  the layout's stage record (see the include below)
-- KEYS[2i]   legacyKey  hash  job:<jobId>
-- KEYS[2i+1] newKey     hash  ws:<workspaceId>:job:<jobId>
--
-- ARGV[1] stage selector: '' static (plan in ARGV[2]), '*' managed, '<n>' managed at epoch n only
-- ARGV[2] the plan in static mode (src/stages.ts planCode): its read origin is the layout whose
--         record is returned; fallback: when the origin is new and its record absent, return the
--         legacy one; compare: read the other layout too and report how it differs
-- ARGV[3] workspaceId
--
-- Replies (managed mode appends the epoch and the stage's name to each: see the stage include), one of:
--   {'OK', jobs}                          jobs: one entry per job, in KEYS order (below)
--   {'WRONGTYPE', key, 'hash', actual}    a key the call reads holds another type
--   {'STAGE_UNSET'} | {'EPOCH_CHANGED'}   managed mode
-- Each job entry: {source, fields, divergence, differingFields}
--   source           'new' | 'legacy' | '' (not found)
--   fields           flat HGETALL of the returned record ({} when not found)
--   divergence       '' | 'missing_new' | 'missing_legacy' | 'field_mismatch' (only when comparing)
--   differingFields  names of the fields whose values differ, sorted
--
-- A legacy key is global (job:<jobId>): a legacy record whose workspace_id is another workspace's
-- is treated as absent, so no workspace ever reads another's job through the legacy layout.

-- @include stage.v2.lua

local function run()
  if #KEYS < 3 or #KEYS > 2001 or #KEYS % 2 ~= 1 then
    return redis.error_reply('ERR read_with_fallback takes the stage key and 1 to 1000 (legacyKey, newKey) pairs')
  end

  local workspaceId, origin = ARGV[3], readFrom

  -- Returns the record, or nil when absent; a key of another type ends the call with WRONGTYPE.
  -- Nothing is written, so failing midway leaves nothing behind.
  local function readRecord(key, isLegacy)
    local flat = redis.pcall('HGETALL', key)
    if flat['err'] then
      return nil, {'WRONGTYPE', key, 'hash', redis.call('TYPE', key)['ok']}
    end
    if #flat == 0 then return nil end
    local record = {}
    for i = 1, #flat, 2 do record[flat[i]] = flat[i + 1] end
    if isLegacy and record['workspace_id'] ~= workspaceId then return nil end
    return {flat = flat, byName = record}
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

  local replies = {}
  for i = 2, #KEYS, 2 do
    local legacy, new, problem
    if origin == 'new' or compare then
      new, problem = readRecord(KEYS[i + 1], false)
      if problem then return problem end
    end
    -- The legacy layout is read only when the stage needs it: as origin, to compare, or to fall back.
    if origin == 'legacy' or compare or (fallback and not new) then
      legacy, problem = readRecord(KEYS[i], true)
      if problem then return problem end
    end

    local source, record = '', nil
    if origin == 'legacy' then
      if legacy then source, record = 'legacy', legacy end
    elseif new then
      source, record = 'new', new
    elseif fallback and legacy then
      source, record = 'legacy', legacy
    end

    local divergence, differing = '', {}
    if compare then
      if legacy and not new then
        divergence = 'missing_new'
      elseif new and not legacy then
        divergence = 'missing_legacy'
      elseif legacy and new then
        differing = differingFields(legacy.byName, new.byName)
        if #differing > 0 then divergence = 'field_mismatch' end
      end
    end

    replies[#replies + 1] = {source, record and record.flat or {}, divergence, differing}
  end
  return {'OK', replies}
end

return staged(run())
