-- An aid quota, the relative's side. A state not beyond the one seen changes nothing; the
-- order changes (and is marked) when the quota comes onto it or leaves it (N3).
-- KEYS: 1 his views, 2 his province's order outbox
-- ARGV: 1 quota id, 2 grant sequence, 3 funder, 4 state (0 pending, 1 ACTIVE, 2 ENDED),
--       5 relative
-- Returns 1 when his side changed, else 0.
local field = 'rq:' .. ARGV[1]
local seen = redis.call('HGET', KEYS[1], field)
local state = tonumber(ARGV[4])
if seen and tonumber(string.match(seen, ' (%d+)$')) >= state then return 0 end
redis.call('HSET', KEYS[1], field, ARGV[2] .. ' ' .. ARGV[4])
local listed = redis.call('HEXISTS', KEYS[1], 'g:' .. ARGV[1]) == 1
if state == 1 and not listed then
  redis.call('HSET', KEYS[1], 'g:' .. ARGV[1], ARGV[2] .. ' ' .. ARGV[3])
  changed_order(KEYS[1], KEYS[2], ARGV[5])
elseif state ~= 1 and listed then
  redis.call('HDEL', KEYS[1], 'g:' .. ARGV[1])
  changed_order(KEYS[1], KEYS[2], ARGV[5])
end
return 1
