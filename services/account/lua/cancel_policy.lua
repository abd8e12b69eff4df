-- CancelCommercialInsurance: the premium goes back to the account it came from (rule A3),
-- paid on if that account has closed since. ARGV: 2 policy_no, 3 entry_id, 4 pay-on entry_id.
local stored = replay(MARKER, FP)
if stored then return stored end
local a = load(1)
if not a then return fail('ACCOUNT_NOT_FOUND', 'no such account') end
local raw = redis.call('HGET', key(a, 6), ARGV[2])
if not raw then return fail('POLICY_NOT_FOUND', 'no such policy on this account') end
local p = cjson.decode(raw)
if p.state ~= 'ACTIVE' then return fail('ALREADY_CANCELLED', 'this policy was cancelled') end
local e = credit_back(a, ARGV[3], N(p.amount), p.insurer .. ':' .. ARGV[2] .. ':cancel', ARGV[4])
p.state = 'CANCELLED'
redis.call('HSET', key(a, 6), ARGV[2], cjson.encode(p))
redis.call('HSET', key(a, 5), p.entry_id, cjson.encode({refund_id = 'policy:' .. ARGV[2],
           entry_id = e.entry_id}))
save(a)
return finish(MARKER, FP, e)
