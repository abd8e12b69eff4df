-- CancelPayment (rule S9): every share credited back to the account it came from, once, and the
-- record CANCELLED, in one step. A refund to an account that has closed or moved out since is
-- written and paid on (credit_back).
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
for i, s in ipairs(shares) do
  local a, refund_id = accounts[i], rec.payment_id .. ':refund:' .. i
  expire_due(a)
  credit_back(a, rec.payment_id .. '-r' .. i, N(s.amount), 'cancel ' .. rec.payment_id,
              rec.payment_id .. '-p' .. i)
  redis.call('HSET', key(a, 5), s.entry_id,
             cjson.encode({refund_id = refund_id, entry_id = rec.payment_id .. '-r' .. i}))
  save(a)
end
rec.state, rec.cancelled_ms = PAYMENT_STATE_CANCELLED, I(NOW)
rec.cancel_reason, rec.cancel_request_id = ARGV[2], ARGV[3]
local encoded = cjson.encode(rec)
redis.call('SET', KEYS[1], encoded)
return encoded
