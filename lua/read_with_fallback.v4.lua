#!lua flags=no-writes
-- read_with_fallback v4: read jobs of one workspace from the stage's read origin, fall back to the
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
--   {'OK', job...}                        one entry per job, in KEYS order, flat (below)
--   {'WRONGTYPE', key, 'hash', actual}    a key the call reads holds another type
--   {'STAGE_UNSET'} | {'EPOCH_CHANGED'}   managed mode
-- Each job's entry, one after the other in the same list (a nested table in a reply costs the
-- server more than the values it holds):
--   source, divergence, n, <n differing field names>, m, <m values: the record's flat HGETALL>
--   source           'new' | 'legacy' | '' (not found; m is then 0)
--   divergence       '' | 'missing_new' | 'missing_legacy' | 'field_mismatch' (only when comparing)
--   differing names  the fields whose values differ, sorted
--
-- A legacy key is global (job:<jobId>): a legacy record whose workspace_id is another workspace's
-- is treated as absent, so no workspace ever reads another's job through the legacy layout.

-- @include stage.v2.lua

-- The record under `key` as HGETALL's flat list, or nil when absent; a key of another type ends the
-- call with WRONGTYPE (any other failure, an ACL refusal, is raised as redis.call raises it). Nothing
-- is written, so failing midway leaves nothing behind. (checks.v1 has the same answer for writing
-- scripts; this script includes none of it, as every function an include makes costs each call.)
local function readRecord(key)
  local flat = redis.pcall('HGETALL', key)
  if flat['err'] then
    if string.sub(flat['err'], 1, 9) ~= 'WRONGTYPE' then error(flat) end
    return nil, {'WRONGTYPE', key, 'hash', redis.call('TYPE', key)['ok']}
  end
  if #flat > 0 then return flat end
end

-- The names of the fields whose values differ, sorted, or nil when none does. Copies one write
-- made hold their fields in the same order (a hash keeps the order fields were added in), so equal
-- lists answer at once; the field by field comparison runs only when they differ.
local function differingFields(a, b)
  if #a == #b then
    local same = true
    for i = 1, #a do
      if a[i] ~= b[i] then same = false break end
    end
    if same then return nil end
  end
  local byName = {}
  for i = 1, #b, 2 do byName[b[i]] = b[i + 1] end
  local names = {}
  for i = 1, #a, 2 do
    local name = a[i]
    if byName[name] ~= a[i + 1] then names[#names + 1] = name end
    byName[name] = nil
  end
  for name in pairs(byName) do names[#names + 1] = name end
  if #names == 0 then return nil end
  table.sort(names)
  return names
end

local function run()
  if #KEYS < 3 or #KEYS > 2001 or #KEYS % 2 ~= 1 then
    return redis.error_reply('ERR read_with_fallback takes the stage key and 1 to 1000 (legacyKey, newKey) pairs')
  end

  local workspaceId, origin = ARGV[3], readFrom
  local reply, n = {'OK'}, 1
  for i = 2, #KEYS, 2 do
    local legacy, new, problem
    if origin == 'new' or compare then
      new, problem = readRecord(KEYS[i + 1])
      if problem then return problem end
    end
    -- The legacy layout is read only when the stage needs it: as origin, to compare, or to fall back.
    if origin == 'legacy' or compare or (fallback and not new) then
      legacy, problem = readRecord(KEYS[i])
      if problem then return problem end
      if legacy then
        local owner
        for k = 1, #legacy, 2 do
          if legacy[k] == 'workspace_id' then owner = legacy[k + 1] break end
        end
        if owner ~= workspaceId then legacy = nil end
      end
    end

    local source, record = '', nil
    if origin == 'legacy' then
      if legacy then source, record = 'legacy', legacy end
    elseif new then
      source, record = 'new', new
    elseif fallback and legacy then
      source, record = 'legacy', legacy
    end

    local divergence, differing = '', nil
    if compare then
      if legacy and not new then
        divergence = 'missing_new'
      elseif new and not legacy then
        divergence = 'missing_legacy'
      elseif legacy and new then
        differing = differingFields(legacy, new)
        if differing then divergence = 'field_mismatch' end
      end
    end

    reply[n + 1], reply[n + 2] = source, divergence
    n = n + 3
    if differing then
      reply[n] = #differing
      for k = 1, #differing do reply[n + k] = differing[k] end
      n = n + #differing
    else
      reply[n] = 0
    end
    n = n + 1
    if record then
      reply[n] = #record
      for k = 1, #record do reply[n + k] = record[k] end
      n = n + #record
    else
      reply[n] = 0
    end
  end
  return reply
end

return staged(run())
