-- A cancel in steps, its last step once every share is refunded: the record CANCELLED with the
-- journal's reason and request id. KEYS: 1 the payment's record.
local raw = redis.call('GET', KEYS[1])
local rec = raw and cjson.decode(raw)
if rec and rec.state == PAYMENT_STATE_CANCELLED then return raw end
if not rec or not rec.cancelling then return fail('INTERNAL', 'no cancel of this payment') end
local encoded = cjson.encode(cancelled(rec, rec.cancelling))
redis.call('SET', KEYS[1], encoded)
return encoded
