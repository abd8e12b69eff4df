-- CancelPayment on one Redis (rule S9): every share credited back to the account it came from,
-- once, and the record CANCELLED, in one step (payment.lua `refund_share`). A refund to an
-- account that has closed or moved out since is written and paid on (credit_back).
-- KEYS: 1 the payment's record, then the account of each share, in the record's order.
-- ARGV: 2 reason, 3 the cancel's request id, 4 '1' = a reversal (a payment cancelled before, by
--       any request, is returned as it is).
local answer, rec = cancel_answer(1, ARGV[3], ARGV[4] == '1')
if answer then return answer end
local shares = rec.shares
if #shares ~= #KEYS - 1 then
  return fail('INVALID_ARGUMENT', 'the accounts given are not the shares of this payment')
end
local accounts = {}
for i, s in ipairs(shares) do
  local a = load(1 + i)
  if not a or a.person_id ~= s.person_id then
    return fail('INVALID_ARGUMENT', 'the accounts given are not the shares of this payment')
  end
  accounts[i] = a
end
for i, s in ipairs(shares) do  -- a share refunded before (a cancel begun in steps) is not again
  local a = accounts[i]
  if redis.call('HSETNX', key(a, 2), rec.payment_id .. '-r' .. i, I(a.seq + 1)) == 1 then
    refund_share(a, rec.payment_id, i, s, true)
    save(a)
  end
end
local encoded = cjson.encode(cancelled(rec, {reason = ARGV[2], request_id = ARGV[3]}))
redis.call('SET', KEYS[1], encoded)
return encoded
