#!lua
-- heartbeat v1: a service instance says it is alive and what it runs (package version, scripts,
-- stage mode, the epoch it last ran under), and prunes a bounded number of instances gone quiet.
-- Status reads these; nothing the queue does depends on them.
--
-- @keys 2
-- KEYS[1] instancesKey  zset  instance id -> last beat (server time, ms)
-- KEYS[2] infoKey       hash  instance id -> what it said in its last beat (JSON)
--
-- ARGV[1] instance id   ARGV[2] what it says (JSON)
-- ARGV[3] prune instances whose last beat is older than this (ms)
-- ARGV[4] prune at most this many per beat
--
-- Replies (first element is the reply code):
--   {'BEAT', nowMs, pruned}
--   {'WRONGTYPE', key, expected, actual}   nothing written
--   {'NO_PERMISSION', command, key}        nothing written
--
-- Every check runs before the first write.

local instancesKey, infoKey = KEYS[1], KEYS[2]
local instanceId, info, maxAgeMs, pruneLimit = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
if #ARGV ~= 4 or not maxAgeMs or not pruneLimit or pruneLimit < 0 or pruneLimit > 100 then
  return redis.error_reply('ERR heartbeat takes an instance id, its info, a max age and a prune limit of 0 to 100')
end

for key, expected in pairs({[instancesKey] = 'zset', [infoKey] = 'hash'}) do
  local actual = redis.call('TYPE', key)['ok']
  if actual ~= 'none' and actual ~= expected then return {'WRONGTYPE', key, expected, actual} end
end
for _, check in ipairs({{'ZADD', instancesKey, '0', 'm'}, {'HSET', infoKey, 'f', 'v'}, {'ZREM', instancesKey, 'm'}, {'HDEL', infoKey, 'f'}}) do
  if not redis.acl_check_cmd(unpack(check)) then return {'NO_PERMISSION', check[1], check[2]} end
end

-- All checks passed; from here on only writes.
local time = redis.call('TIME')
local nowMs = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local gone = redis.call('ZRANGEBYSCORE', instancesKey, '-inf', '(' .. (nowMs - maxAgeMs), 'LIMIT', 0, pruneLimit)
for _, id in ipairs(gone) do
  redis.call('ZREM', instancesKey, id)
  redis.call('HDEL', infoKey, id)
end
redis.call('ZADD', instancesKey, nowMs, instanceId)
redis.call('HSET', infoKey, instanceId, info)
return {'BEAT', tostring(nowMs), #gone}
