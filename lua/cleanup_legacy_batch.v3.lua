#!lua
-- cleanup_legacy_batch v3: delete a bounded batch of legacy job records whose new twin exists.
-- Runs only under a plan that neither reads nor writes the legacy layout (stage complete), checked
-- in this same step: a transition back that lands mid-run stops the deletes at once. A key is
-- deleted only when it is still a legacy job hash of the workspace the caller named and the new
-- record exists, so nothing else can ever be deleted.
--
-- @keys 1 + 2 per job (at most 500 jobs per call)
-- KEYS[1]    stageKey   hash  the layout's stage record (see the include below)
-- KEYS[2i]   legacyKey  hash  job:<jobId>: deleted when the checks below pass
-- KEYS[2i+1] newKey     hash  ws:<workspaceId>:job:<jobId>: read only, must exist
--
-- ARGV[1]   stage selector: '' static (plan in ARGV[2]), '*' managed, '<n>' managed at epoch n only
-- ARGV[2]   the plan in static mode (src/stages.ts planCode)
-- ARGV[i+2] workspaceId of job i, as the caller read it from the legacy record
--
-- Replies (managed mode appends the epoch and the stage's name to each: see the stage include), one of:
--   {'OK', results}                   one outcome per job, in KEYS order:
--     'deleted'   the legacy record is gone now
--     'no_new'    the new record does not exist (or is not a hash): kept
--     'changed'   the legacy record's workspace_id is no longer ARGV[i+2]: kept
--     'gone'      the legacy key no longer exists (or is not a hash): nothing to delete
--   {'WRONG_STAGE'}                   the plan still reads or writes the legacy layout: nothing deleted
--   {'NO_PERMISSION', command, key}   the ACL user may not run DEL: nothing deleted
--   {'STAGE_UNSET'} | {'EPOCH_CHANGED'} managed mode: nothing deleted
--
-- Every job's outcome is decided before the first delete. The shebang (no no-writes flag) makes an
-- over-maxmemory server refuse the call before it starts.

-- @include stage.v2.lua

local function run()
  local jobCount = (#KEYS - 1) / 2
  if jobCount < 1 or jobCount > 500 or jobCount % 1 ~= 0 or #ARGV ~= 2 + jobCount then
    return redis.error_reply('ERR cleanup_legacy_batch takes the stage key and 1 to 500 jobs of 2 keys and 1 argument each')
  end
  if writeLegacy or readFrom == 'legacy' or fallback then return {'WRONG_STAGE'} end

  local results, doomed = {}, {}
  for job = 1, jobCount do
    local legacyKey, newKey, workspaceId = KEYS[2 * job], KEYS[2 * job + 1], ARGV[job + 2]
    local outcome
    if redis.call('TYPE', legacyKey)['ok'] ~= 'hash' then
      outcome = 'gone'
    elseif redis.call('HGET', legacyKey, 'workspace_id') ~= workspaceId then
      outcome = 'changed'
    elseif redis.call('TYPE', newKey)['ok'] ~= 'hash' then
      outcome = 'no_new'
    else
      outcome = 'deleted'
      doomed[#doomed + 1] = legacyKey
    end
    results[job] = outcome
  end

  -- Redis checks ACLs at each command, so ask about every delete before the first one.
  for _, key in ipairs(doomed) do
    if not redis.acl_check_cmd('DEL', key) then return {'NO_PERMISSION', 'DEL', key} end
  end

  for _, key in ipairs(doomed) do redis.call('DEL', key) end
  return {'OK', results}
end

return staged(run())
