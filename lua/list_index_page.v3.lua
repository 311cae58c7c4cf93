#!lua flags=no-writes
-- list_index_page v3: one page of a workspace index, newest first, strictly after a cursor.
-- The index orders jobs by (created_at, jobId); reading newest first reverses both. The page does
-- not depend on the stage, but it runs under one: listJobs reads its records under the same epoch.
-- Each entry says whether retention removed its job: the sweep (sweep_expired) has not taken its
-- entry out yet, and the caller must count it neither as a job nor as a divergence.
--
-- @keys 3
-- KEYS[1] stageKey     hash  the layout's stage record (see the include below)
-- KEYS[2] indexKey     zset  ws:<workspaceId>:jobs, member jobId, score created_at (ms)
-- KEYS[3] expiriesKey  zset  queue:<name>:expiries, "<workspaceId>:<jobId>" -> when retention removes it (ms)
--
-- ARGV[1] stage selector: '' static, '*' managed, '<n>' managed at epoch n only
-- ARGV[2] the plan in static mode (unused here)
-- ARGV[3] count (1..1001)
-- ARGV[4] cursor score ('' = from the newest job)
-- ARGV[5] cursor jobId: the last job of the previous page
-- ARGV[6] workspaceId (names the job in the expiries set)
--
-- Replies (managed mode appends the epoch and the stage's name to each: see the stage include), one of:
--   {'OK', {jobId, score, expired, ...}}  at most count entries; expired '1' when retention's time
--                                          for the job has come (server time), else '0'
--   {'WRONGTYPE', key, 'zset', actual}
--   {'STAGE_UNSET'} | {'EPOCH_CHANGED'}         managed mode
--
-- When the cursor's job is still indexed with the same score, its rank places the page exactly.
-- When it is gone, the page starts after every entry ranked above (score, jobId); counting entries
-- that share the cursor's millisecond is capped at 1000 so the call stays bounded.

-- @include stage.v2.lua

local function run()
  local indexKey, count = KEYS[2], tonumber(ARGV[3])
  local cursorScore, cursorJobId = ARGV[4], ARGV[5]
  if not count or count < 1 or count > 1001 then
    return redis.error_reply('ERR list_index_page count must be 1..1001')
  end

  for _, key in ipairs({indexKey, KEYS[3]}) do
    local actualType = redis.call('TYPE', key)['ok']
    if actualType ~= 'none' and actualType ~= 'zset' then
      return {'WRONGTYPE', key, 'zset', actualType}
    end
  end

  -- Byte order, as Redis orders members; Lua's own string comparison follows the server's locale.
  local function sortsAfter(a, b)
    for i = 1, math.min(#a, #b) do
      local x, y = a:byte(i), b:byte(i)
      if x ~= y then return x > y end
    end
    return #a > #b
  end

  local start = 0
  if cursorScore ~= '' then
    local rank = redis.call('ZREVRANK', indexKey, cursorJobId)
    local score = rank and redis.call('ZSCORE', indexKey, cursorJobId)
    if rank and tonumber(score) == tonumber(cursorScore) then
      start = rank + 1
    else
      start = redis.call('ZCOUNT', indexKey, '(' .. cursorScore, '+inf')
      local sameMillisecond = redis.call('ZRANGE', indexKey, cursorScore, cursorScore, 'BYSCORE', 'LIMIT', 0, 1000)
      for _, jobId in ipairs(sameMillisecond) do
        if sortsAfter(jobId, cursorJobId) then start = start + 1 end
      end
    end
  end

  local page = redis.call('ZRANGE', indexKey, start, start + count - 1, 'REV', 'WITHSCORES')
  local entries = {}
  local now
  for i = 1, #page, 2 do
    local expiresAt = redis.call('ZSCORE', KEYS[3], ARGV[6] .. ':' .. page[i])
    local expired = '0'
    if expiresAt then
      if not now then
        local time = redis.call('TIME')
        now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
      end
      if tonumber(expiresAt) <= now then expired = '1' end
    end
    entries[#entries + 1] = page[i]
    entries[#entries + 1] = page[i + 1]
    entries[#entries + 1] = expired
  end
  return {'OK', entries}
end

return staged(run())
