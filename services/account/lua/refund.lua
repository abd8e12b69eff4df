-- One refund of RefundEntries (rule S9): credit back the whole of a debit entry, once.
-- ARGV: 2 refund_id, 3 debit entry_id, 4 new entry_id, 5 reference, 6 pay-on entry_id.
-- The same refund_id again returns its entry; another refund of the same debit is refused.
local a = load(1)
if not a then return fail('ACCOUNT_NOT_FOUND', 'no such account') end
local done = redis.call('HGET', key(a, 5), ARGV[3])
if done then
  local r = cjson.decode(done)
  if r.refund_id ~= ARGV[2] then
    return fail('ALREADY_CANCELLED', 'this entry was already refunded by another refund')
  end
  return entry_answer(a, r.entry_id)
end
local debit, broken = entry_by_id(a, ARGV[3])
if broken then return broken end
if not debit then return fail('ENTRY_NOT_FOUND', 'no such entry on this account') end
if (debit.kind ~= ENTRY_KIND_SETTLEMENT and debit.kind ~= ENTRY_KIND_PREMIUM)
   or N(debit.amount) >= 0 then
  return fail('INVALID_ARGUMENT', 'only settlement and premium debits are refunded here')
end
expire_due(a)
local e = credit_back(a, ARGV[4], -N(debit.amount), ARGV[5], ARGV[6])
redis.call('HSET', key(a, 5), ARGV[3], cjson.encode({refund_id = ARGV[2], entry_id = e.entry_id}))
save(a)
return cjson.encode(e)
