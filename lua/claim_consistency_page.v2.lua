#!lua flags=no-writes
-- claim_consistency_page v2: one bounded page of a queue's waiting list, processing set or claims
-- hash, each entry with what the other structures say about it, read in one atomic snapshot. A
-- worker claiming or finishing between two separate reads would otherwise look like a divergence.
-- Reads only.
--
-- @keys 4
-- KEYS[1] stageKey       hash  the layout's stage record (see the include below)
-- KEYS[2] queueKey       list  queue:<name>
-- KEYS[3] processingKey  zset  queue:<name>:processing, member entry, score claim deadline (ms)
-- KEYS[4] claimsKey      hash  queue:<name>:claims, entry -> claim record
--
-- ARGV[1] stage selector: '' static, '*' managed, '<n>' managed at epoch n only
-- ARGV[2] the plan in static mode (unused here)
-- ARGV[3] what: 'queue' | 'processing' | 'claims'
-- ARGV[4] where the page starts: a rank ('queue', 'processing') or an HSCAN cursor ('claims')
-- ARGV[5] page size, 1 to 1000
--
-- Replies (managed mode appends the epoch and the stage's name to each: see the stage include), one of
-- {'STAGE_UNSET'}, {'EPOCH_CHANGED'} (managed mode), or:
--   {'OK', next, {entry, fact, entry, fact, ...}}
--     next: where the following page starts ('' when this one was the last)
--     fact, per entry: 'queue'      '1' when the entry is also in the processing set
--                      'processing' '1' when the entry has a claim record
--                      'claims'     '1' when the entry is in the processing set
--   {'WRONGTYPE', key, expected, actual}   a key the page reads holds another type

-- @include stage.v2.lua

local function run()
  local queueKey, processingKey, claimsKey = KEYS[2], KEYS[3], KEYS[4]
  local what, from, count = ARGV[3], ARGV[4], tonumber(ARGV[5])
  if #KEYS ~= 4 or not count or count < 1 or count > 1000 then
    return redis.error_reply('ERR claim_consistency_page takes 4 keys and a page size of 1 to 1000')
  end

  local function wrongType(key, expected)
    local actual = redis.call('TYPE', key)['ok']
    if actual ~= 'none' and actual ~= expected then return {'WRONGTYPE', key, expected, actual} end
  end

  local problem, entries, next
  if what == 'queue' then
    problem = wrongType(queueKey, 'list') or wrongType(processingKey, 'zset')
    if problem then return problem end
    entries = redis.call('LRANGE', queueKey, tonumber(from), tonumber(from) + count - 1)
    next = #entries == count and tostring(tonumber(from) + count) or ''
  elseif what == 'processing' then
    problem = wrongType(processingKey, 'zset') or wrongType(claimsKey, 'hash')
    if problem then return problem end
    entries = redis.call('ZRANGE', processingKey, tonumber(from), tonumber(from) + count - 1)
    next = #entries == count and tostring(tonumber(from) + count) or ''
  elseif what == 'claims' then
    problem = wrongType(claimsKey, 'hash') or wrongType(processingKey, 'zset')
    if problem then return problem end
    local page = redis.call('HSCAN', claimsKey, from, 'COUNT', count)
    entries = {}
    for i = 1, #page[2], 2 do entries[#entries + 1] = page[2][i] end
    next = page[1] ~= '0' and page[1] or ''
  else
    return redis.error_reply("ERR claim_consistency_page reads 'queue', 'processing' or 'claims'")
  end

  local flat = {}
  for _, entry in ipairs(entries) do
    local fact
    if what == 'processing' then
      fact = redis.call('HEXISTS', claimsKey, entry) == 1
    else
      fact = redis.call('ZSCORE', processingKey, entry) ~= false
    end
    flat[#flat + 1] = entry
    flat[#flat + 1] = fact and '1' or '0'
  end
  return {'OK', next, flat}
end

return staged(run())
