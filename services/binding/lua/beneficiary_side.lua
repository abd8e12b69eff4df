-- A binding across two provinces, the beneficiary's side, as the record now stands. Once a
-- binding is in his history it is added to his payers only from awaiting consent, so a late add
-- after the end changes nothing.
-- KEYS: 1 beneficiary's views, 2 order outbox
-- ARGV: 1 binding id, 2 created ms, 3 beneficiary, 4 '1' = the binding is ACTIVE (add it to the
--       payer list), '2' = it awaits his consent, '0' = it has ended (take it off)
-- Returns the binding's priority (0 = not a payer).
local known = redis.call('HEXISTS', KEYS[1], 'e:' .. ARGV[1]) == 1
local awaiting = redis.call('HEXISTS', KEYS[1], 'w:' .. ARGV[1]) == 1
if ARGV[4] == '2' then
  if not known then add_awaiting(KEYS[1], ARGV[1], ARGV[2]) end
  return 0
end
if ARGV[4] == '1' then
  if not known or awaiting then
    redis.call('HDEL', KEYS[1], 'w:' .. ARGV[1])
    return add_view(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3])
  end
  return position(ids_of(KEYS[1]), ARGV[1]) or 0
end
if not known then redis.call('HSET', KEYS[1], 'e:' .. ARGV[1], ARGV[2]) end
redis.call('HDEL', KEYS[1], 'w:' .. ARGV[1])
if drop_payer(KEYS[1], ARGV[1]) then changed_order(KEYS[1], KEYS[2], ARGV[3]) end
return 0
