#!lua
-- recover_stalled v3: put jobs whose claim outlived its visibility timeout back on the queue, with
-- status 'queued' in the layouts the stage writes. A job moves from the processing set to the queue
-- in one step, so it is never in both and never in neither. An entry that leads to no job moves to a
-- list of its own instead, so one bad entry never blocks the stalled jobs beside it.
--
-- @keys 6 + 2 per job (at most 100 jobs per call)
-- KEYS[1] stageKey        hash  the layout's stage record (see the include below)
-- KEYS[2] queueKey        list  queue:<name>; recovered entries are RPUSHed
-- KEYS[3] processingKey   zset  queue:<name>:processing, member entry, score claim deadline (ms)
-- KEYS[4] claimsKey       hash  queue:<name>:claims, see claim_job
-- KEYS[5] orphansKey      list  queue:<name>:orphans: stalled entries whose job record is missing
-- KEYS[6] unsupportedKey  list  queue:<name>:unsupported: stalled entries the package cannot place
--                               (an id outside the whitelist, a legacy record without a valid workspace)
-- KEYS[5+2i] legacyKey    hash  job:<jobId> of job i; neither read nor written unless the plan writes it
-- KEYS[6+2i] newKey       hash  ws:<workspaceId>:job:<jobId>; neither read nor written unless the plan writes it
--                               (both stand-ins, never touched, when job i names no workspace)
--
-- ARGV[1] stage selector: '' static (plan in ARGV[2]), '*' managed, '<n>' managed at epoch n only
-- ARGV[2] the plan in static mode (src/stages.ts planCode)
-- ARGV[3i]   entry of job i, as the processing set holds it
-- ARGV[3i+1] workspaceId of job i ('' when no record names a valid one)
-- ARGV[3i+2] 'unsupported' when the entry or its record cannot be placed, else ''
--
-- Replies (managed mode appends the epoch and the stage's name to each: see the stage include), one of:
--   {'RECOVERED', recovered, orphaned, skipped, unsupported}
--        skipped: entries no longer stalled (finished or claimed again since the caller looked)
--   {'WRONGTYPE', key, expected, actual}   nothing written
--   {'NO_PERMISSION', command, key}        nothing written
--   {'STAGE_UNSET'} | {'EPOCH_CHANGED'}    managed mode: nothing written
--
-- Every check runs before the first write: Redis keeps the writes a failing script already made.

-- @include stage.v2.lua

local function run()
  local queueKey, processingKey, claimsKey = KEYS[2], KEYS[3], KEYS[4]
  local orphansKey, unsupportedKey = KEYS[5], KEYS[6]
  local jobs = (#KEYS - 6) / 2
  if jobs < 1 or jobs > 100 or jobs % 1 ~= 0 or #ARGV ~= 2 + 3 * jobs then
    return redis.error_reply('ERR recover_stalled takes 1 to 100 jobs, two keys and three arguments each')
  end

  local function wrongType(key, expected)
    local actual = redis.call('TYPE', key)['ok']
    if actual ~= 'none' and actual ~= expected then
      return {'WRONGTYPE', key, expected, actual}
    end
  end
  local function refused(command, key, ...)
    if not redis.acl_check_cmd(command, key, ...) then return {'NO_PERMISSION', command, key} end
  end

  local problem = wrongType(queueKey, 'list') or wrongType(processingKey, 'zset')
    or wrongType(claimsKey, 'hash') or wrongType(orphansKey, 'list') or wrongType(unsupportedKey, 'list')
  if problem then return problem end

  local time = redis.call('TIME')
  local nowMs = time[1] .. string.format('%03d', math.floor(tonumber(time[2]) / 1000))

  -- Decide every job first: which layouts hold its record, or whether it is no longer stalled.
  local decisions = {}
  for i = 1, jobs do
    local legacyKey, newKey = KEYS[5 + 2 * i], KEYS[6 + 2 * i]
    local entry, workspaceId = ARGV[3 * i], ARGV[3 * i + 1]
    local known = workspaceId ~= ''
    -- The job keys of an entry that names no workspace are stand-ins: never read them.
    problem = known and ((writeLegacy and wrongType(legacyKey, 'hash')) or (writeNew and wrongType(newKey, 'hash')))
    if problem then return problem end
    local deadline = tonumber(redis.call('ZSCORE', processingKey, entry))
    local decision = {entry = entry, stalled = deadline ~= nil and deadline <= tonumber(nowMs)}
    if decision.stalled and known then
      decision.legacy = writeLegacy and redis.call('HGET', legacyKey, 'workspace_id') == workspaceId and legacyKey
      decision.new = writeNew and redis.call('EXISTS', newKey) == 1 and newKey
    end
    decision.aside = ARGV[3 * i + 2] == 'unsupported' and unsupportedKey or orphansKey
    decisions[i] = decision
  end

  problem = refused('ZREM', processingKey, 'e') or refused('HDEL', claimsKey, 'e')
    or refused('RPUSH', queueKey, 'e') or refused('RPUSH', orphansKey, 'e') or refused('RPUSH', unsupportedKey, 'e')
  for i = 1, jobs do
    problem = problem or (decisions[i].legacy and refused('HSET', decisions[i].legacy, 'f', 'v'))
      or (decisions[i].new and refused('HSET', decisions[i].new, 'f', 'v'))
  end
  if problem then return problem end

  -- All checks passed; from here on only writes.
  local recovered, orphaned, skipped, unsupported = 0, 0, 0, 0
  for i = 1, jobs do
    local decision = decisions[i]
    if not decision.stalled then
      skipped = skipped + 1
    else
      redis.call('ZREM', processingKey, decision.entry)
      redis.call('HDEL', claimsKey, decision.entry)
      if decision.legacy or decision.new then
        if decision.legacy then redis.call('HSET', decision.legacy, 'status', 'queued', 'updated_at', nowMs) end
        if decision.new then redis.call('HSET', decision.new, 'status', 'queued', 'updated_at', nowMs) end
        redis.call('RPUSH', queueKey, decision.entry)
        recovered = recovered + 1
      else
        redis.call('RPUSH', decision.aside, decision.entry)
        if decision.aside == unsupportedKey then unsupported = unsupported + 1 else orphaned = orphaned + 1 end
      end
    end
  end
  return {'RECOVERED', recovered, orphaned, skipped, unsupported}
end

return staged(run())
