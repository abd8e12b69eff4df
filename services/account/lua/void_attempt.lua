-- The recovery loop gives up an attempt it found marked but never journaled (stepwise.py): the
-- attempt is listed in the record as void, so that it can never journal afterwards (pay_plan,
-- cancel_begin: LOCK_TIMEOUT), and the key is free for a new attempt. A payment journaled or
-- finished meanwhile, or a cancel begun, is returned as it is, to be finished instead.
-- KEYS: 1 the payment's record. ARGV: 2 the attempt's token, 3 payment_id, 4 '1' = a cancel's
-- attempt (of a PAID record).
local raw = redis.call('GET', KEYS[1])
local rec = raw and cjson.decode(raw)
if ARGV[4] == '1' then
  if not rec or rec.phase or rec.state ~= PAYMENT_STATE_PAID or rec.cancelling then
    return raw or '{}'
  end
elseif rec and rec.phase ~= 'void' then
  return raw
end
rec = rec or {payment_id = ARGV[3], phase = 'void'}
rec.void = rec.void or {}
if not is_void(rec, ARGV[2]) then table.insert(rec.void, ARGV[2]) end
local encoded = cjson.encode(rec)
redis.call('SET', KEYS[1], encoded)
return encoded
