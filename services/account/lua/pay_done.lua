-- A payment in steps, its last step once every account's step is done: the record PAID with its
-- shares as they were written (ARGV 2: JSON list), the journal's own fields gone.
-- KEYS: 1 the payment's record. The record as it is when it was finished before.
local raw = redis.call('GET', KEYS[1])
if not raw then return fail('INTERNAL', 'the payment has no journal') end
local rec = cjson.decode(raw)
if rec.phase ~= 'paying' then return raw end
rec.phase, rec.attempt, rec.year, rec.locks = nil, nil, nil, nil
rec.shares, rec.state = cjson.decode(ARGV[2]), PAYMENT_STATE_PAID
local encoded = cjson.encode(rec)
redis.call('SET', KEYS[1], encoded)
return encoded
