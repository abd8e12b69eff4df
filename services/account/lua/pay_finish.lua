-- A payment in steps, its last step: the record PAID with its shares, the journal gone.
-- KEYS: 1 the payment's record, 2 its journal. ARGV: 2 the shares (JSON list, entry ids set).
-- The record as it is when it was written before.
local raw = redis.call('GET', KEYS[1])
if raw then return raw end
local journal = redis.call('GET', KEYS[2])
if not journal then return fail('INTERNAL', 'the payment has neither a record nor a journal') end
local rec = cjson.decode(journal)
rec.inputs = nil
rec.shares, rec.state = cjson.decode(ARGV[2]), PAYMENT_STATE_PAID
local encoded = cjson.encode(rec)
redis.call('SET', KEYS[1], encoded)
redis.call('DEL', KEYS[2])
return encoded
