-- ResolvePayment: the outcome of a payment whose caller lost track of it. KEYS: 1 the payment's
-- record. ARGV: 2 payment_id. Made: its record as it is. Never made: ABORTED from now on, so a
-- late PayFromAccounts of it is refused (the caller may then end its journal either way).
local raw = redis.call('GET', KEYS[1])
if raw then return raw end
local rec = cjson.encode({state = PAYMENT_STATE_ABORTED, payment_id = ARGV[2], shares = {},
                          at_ms = I(NOW)})
redis.call('SET', KEYS[1], rec, 'EX', RECORD_TTL_S)
return rec
