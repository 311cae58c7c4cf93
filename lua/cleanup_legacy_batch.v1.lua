#!lua
-- cleanup_legacy_batch v1: delete a bounded batch of legacy job records whose new twin exists.
-- Run only once the migration is complete and verified: the legacy layout is then neither read
-- nor written. A key is deleted only when it is still a legacy job hash of the workspace the
-- caller named and the new record exists, so nothing else can ever be deleted.
--
-- @keys 2 per job (at most 500 jobs per call)
-- KEYS[2i-1] legacyKey  hash  job:<jobId>: deleted when the checks below pass
-- KEYS[2i]   newKey     hash  ws:<workspaceId>:job:<jobId>: read only, must exist
--
-- ARGV[i] workspaceId of job i, as the caller read it from the legacy record
--
-- Replies (first element is the reply code):
--   {'OK', results}                   one outcome per job, in KEYS order:
--     'deleted'   the legacy record is gone now
--     'no_new'    the new record does not exist (or is not a hash): kept
--     'changed'   the legacy record's workspace_id is no longer ARGV[i]: kept
--     'gone'      the legacy key no longer exists (or is not a hash): nothing to delete
--   {'NO_PERMISSION', command, key}   the ACL user may not run DEL: nothing deleted
--
-- Every job's outcome is decided before the first delete. The shebang (no no-writes flag) makes an
-- over-maxmemory server refuse the call before it starts.

local jobCount = #KEYS / 2
if jobCount < 1 or jobCount > 500 or #KEYS % 2 ~= 0 or #ARGV ~= jobCount then
  return redis.error_reply('ERR cleanup_legacy_batch takes 1 to 500 jobs of 2 keys and 1 argument each')
end

local results, doomed = {}, {}
for job = 1, jobCount do
  local legacyKey, newKey, workspaceId = KEYS[2 * job - 1], KEYS[2 * job], ARGV[job]
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
