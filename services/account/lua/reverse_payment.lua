-- ReversePayment, for a payment not made (rule S10): the record REVERSED, so that the payment,
-- should it arrive late, is refused. KEYS: 1 the payment's record, 2 its journal (a payment in
-- steps, stepwise.py). ARGV: 2 payment_id.
-- A payment made meanwhile is returned as it is (the caller cancels it); one being made is
-- refused as in progress (the caller finishes it first).
local raw = redis.call('GET', KEYS[1])
if raw then return raw end
if redis.call('EXISTS', KEYS[2]) == 1 then
  return fail('SETTLEMENT_IN_PROGRESS', 'the payment is being made')
end
local rec = cjson.encode({state = PAYMENT_STATE_REVERSED, payment_id = ARGV[2], kind = '',
                          patient_id = '', details = '', shares = {}, at_ms = I(NOW),
                          cancelled_ms = '0', cancel_reason = '', cancel_request_id = ''})
redis.call('SET', KEYS[1], rec)
return rec
