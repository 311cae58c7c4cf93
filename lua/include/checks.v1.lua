-- checks v1 (an include, not a script): the checks every writing script makes before its first
-- write, and the server's clock. Redis keeps the writes a failing script already made, so a script
-- learns every key's type (from a read it makes anyway, or TYPE) and asks about every write's ACL
-- first, then writes.

-- A reply saying `key` holds another type than `expected`, or nil when it holds that type or nothing.
local function wrongType(key, expected)
  local actual = redis.call('TYPE', key)['ok']
  if actual ~= 'none' and actual ~= expected then return {'WRONGTYPE', key, expected, actual} end
end

-- The reply to a read made with redis.pcall that failed: WRONGTYPE when `key` holds another type
-- than `expected` (so a read the script makes anyway stands in for a TYPE call); any other failure,
-- an ACL refusal, is raised as redis.call would have raised it.
local function readFailure(key, expected, failure)
  if string.sub(failure['err'], 1, 9) ~= 'WRONGTYPE' then error(failure) end
  return {'WRONGTYPE', key, expected, redis.call('TYPE', key)['ok']}
end

-- A reply saying the ACL user may not run this write, or nil. Redis checks ACLs at each command, so
-- a user allowed the reads but not a later write would otherwise leave the writes before it behind.
local function refused(command, key, ...)
  if not redis.acl_check_cmd(command, key, ...) then return {'NO_PERMISSION', command, key} end
end

-- The server's time in milliseconds, as the decimal text the records hold.
local function serverNowMs()
  local time = redis.call('TIME')
  return time[1] .. string.format('%03d', math.floor(tonumber(time[2]) / 1000))
end
