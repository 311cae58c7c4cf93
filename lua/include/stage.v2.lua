-- stage v2 (an include, not a script): the stage this call runs under, read in the same atomic
-- step as everything the script does. Static mode passes the plan in ARGV[2]; managed mode reads
-- it, with the epoch and the stage's name, from the stage record in KEYS[1]. The plan is five
-- characters (src/stages.ts planCode): writeLegacy, writeNew, readFrom ('L'|'N'), fallback, compare;
-- the script acts on these flags, never on the stage's name. Runs before the script's first read,
-- so a refusal here leaves nothing written.
local epoch, stageName, plan = '', '', ARGV[2]
if ARGV[1] ~= '' then
  local record = redis.pcall('HMGET', KEYS[1], 'epoch', 'stage', 'plan')
  if record['err'] then return {'WRONGTYPE', KEYS[1], 'hash', redis.call('TYPE', KEYS[1])['ok'], '', ''} end
  if not record[1] then return {'STAGE_UNSET', '', ''} end
  epoch, stageName, plan = record[1], record[2], record[3]
  if ARGV[1] ~= '*' and ARGV[1] ~= epoch then return {'EPOCH_CHANGED', epoch, stageName} end
end
local writeLegacy, writeNew = string.sub(plan, 1, 1) == '1', string.sub(plan, 2, 2) == '1'
local readFrom = string.sub(plan, 3, 3) == 'N' and 'new' or 'legacy'
local fallback, compare = string.sub(plan, 4, 4) == '1', string.sub(plan, 5, 5) == '1'

-- The script's answer: its own reply in static mode, where the caller knows the stage; in managed
-- mode the same reply with the epoch and the stage's name appended, so the caller learns what the
-- call ran under. Flat, because every table in a reply costs the server time on the hot path.
local function staged(reply)
  if ARGV[1] ~= '' and not reply['err'] then
    reply[#reply + 1] = epoch
    reply[#reply + 1] = stageName
  end
  return reply
end
