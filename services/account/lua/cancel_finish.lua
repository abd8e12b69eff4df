-- CancelPayment in steps, its last step, once every share is refunded: the record CANCELLED
-- with the journal's reason and request id, the journal gone. KEYS: 1 record, 2 cancel journal.
local raw = redis.call('GET', KEYS[1])
local rec = raw and cjson.decode(raw)
if rec and rec.state == PAYMENT_STATE_CANCELLED then return raw end
local journal = redis.call('GET', KEYS[2])
if not rec or not journal then
  return fail('INTERNAL', 'the cancel has no record or no journal')
end
local j = cjson.decode(journal)
rec.state, rec.cancelled_ms = PAYMENT_STATE_CANCELLED, I(NOW)
rec.cancel_reason, rec.cancel_request_id = j.reason, j.request_id
local encoded = cjson.encode(rec)
redis.call('SET', KEYS[1], encoded)
redis.call('DEL', KEYS[2])
return encoded
