-- A payment in steps: one source's share (rules S4, A2), written once. KEYS: 1 the source's
-- account, 2 its marker for this payment. ARGV: 2 payment_id, 3 the share's number among those
-- that pay, 4 entry kind, 5 fen left to pay, 6 patient, 7 binding_id ('' = his own account),
-- 8 on_date, 9 '1' = quote only, 10 the payment's time (ms, from its journal).
-- The share is kept under the marker, also when it is 0, so a step run again (a retry, or the
-- recovery loop finishing the payment) answers what it answered the first time, and the
-- shares after it come out the same. A premium the source cannot pay is refused and nothing
-- is kept: the payment is then given up (stepwise.py).
local payment_id, kind, left, quote = ARGV[2], ARGV[4], N(ARGV[5]), ARGV[9] == '1'
if not quote then
  local done = redis.call('GET', KEYS[MARKER])
  if done then return done end
end
local a = load(1)
local premium = kind == ENTRY_KIND_PREMIUM
local take, refusal = source_take(a, ARGV[7], ARGV[6], ARGV[8], premium, left)
if not take then return refusal end
local share = {person_id = a and a.person_id or '', own = ARGV[7] == '', amount = I(take),
               entry_id = '', balance_after = I(a and a.balance - take or 0)}
if quote then return cjson.encode(share) end
if take > 0 then
  expire_due(a)
  local e = append(a, payment_id .. '-' .. ARGV[3], kind, -take, payment_id)
  save(a)
  share.entry_id, share.balance_after = e.entry_id, e.balance_after
  if not premium and not share.own then redis.call('ZADD', key(a, 10), ARGV[10], payment_id) end
end
local encoded = cjson.encode(share)
redis.call('SET', KEYS[MARKER], encoded, 'EX', RECORD_TTL_S)
return encoded
