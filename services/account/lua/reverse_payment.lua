-- ReversePayment, for a payment not made (rule S10): the record REVERSED, so that the payment,
-- should it arrive late, is refused. KEYS: 1 the payment's record. ARGV: 2 payment_id.
-- A payment made meanwhile is returned as it is (the caller cancels it); one being made in
-- steps (Redis Cluster) is refused as in progress (the caller finishes it first). Attempts the
-- recovery loop gave up change nothing: a reversal overwrites their mark.
local raw = redis.call('GET', KEYS[1])
local rec = raw and cjson.decode(raw)
if rec and not rec.phase then return raw end
if rec and rec.phase == 'paying' then
  return fail('SETTLEMENT_IN_PROGRESS', 'the payment is being made')
end
local reversed = record_of(ARGV[2], '', '', '', I(now()))
reversed.state = PAYMENT_STATE_REVERSED
local encoded = cjson.encode(reversed)
redis.call('SET', KEYS[1], encoded)
return encoded
