-- A cancel in steps: share `i` of the payment credited back to its payer once (rule S9,
-- payment.lua `refund_share`); run again, it answers the refund written. No lock: a refund only
-- adds to the balance, so no plan made under a lock is overtaken by it.
-- KEYS: 1 the payer's account. ARGV: 2 payment_id, 3 i, 4 the share (JSON, from the record).
local a = load(1)
if not a then return fail('INTERNAL', 'a payer of this payment has no account') end
local refund_id = ARGV[2] .. '-r' .. ARGV[3]
if redis.call('HSETNX', key(a, 2), refund_id, I(a.seq + 1)) == 0 then
  local e, broken = entry_by_id(a, refund_id)
  return broken or cjson.encode(e)
end
local e = refund_share(a, ARGV[2], ARGV[3], cjson.decode(ARGV[4]), true)
save(a)
return cjson.encode(e)
