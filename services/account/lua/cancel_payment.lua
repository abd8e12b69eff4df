-- CancelPayment on one Redis (rule S9): every share credited back to the account it came from,
-- once, and the record CANCELLED, in one step (payment.lua `refund_share`; a quota's share back
-- to its quota while it is ACTIVE). A refund to an account that has closed or moved out since is
-- written and paid on (credit_back). A settlement is listed in its institution's day (and the
-- month's clearing) of the cancel (N6, N7).
-- KEYS: 1 the payment's record, 2 the institution's day list, 3 the month's clearing list (any
--       key of the record's slot for a premium), then the account of each share, in the
--       record's order.
-- ARGV: 2 reason, 3 the cancel's request id, 4 '1' = a reversal (a payment cancelled before, by
--       any request, is returned as it is), 5 the Beijing day (number) of KEYS 2 and 3.
local SHARES = 3
local answer, rec = cancel_answer(1, ARGV[3], ARGV[4] == '1')
if answer then return answer end
local stale = refuse_day(ARGV[5])
if stale then return stale end
local shares = rec.shares
if #shares ~= #KEYS - SHARES then
  return fail('INVALID_ARGUMENT', 'the accounts given are not the shares of this payment')
end
local accounts, by_person = {}, {}  -- a funder with a quota's share and a payer's: one account
for i, s in ipairs(shares) do
  local a = by_person[s.person_id] or load(SHARES + i)
  if not a or a.person_id ~= s.person_id then
    return fail('INVALID_ARGUMENT', 'the accounts given are not the shares of this payment')
  end
  accounts[i], by_person[s.person_id] = a, a
end
for i, s in ipairs(shares) do  -- a share refunded before (a cancel begun in steps) is not again
  local a = accounts[i]
  if redis.call('HSETNX', key(a, 2), rec.payment_id .. '-r' .. i, I(a.seq + 1)) == 1 then
    refund_share(a, rec.payment_id, i, s, true)
    save(a)
  end
end
rec = cancelled(rec, {reason = ARGV[2], request_id = ARGV[3]})
if rec.inst then list_settlement(KEYS[2], KEYS[3], rec, '-', rec.cancelled_ms) end
local encoded = cjson.encode(rec)
redis.call('SET', KEYS[1], encoded)
return encoded
