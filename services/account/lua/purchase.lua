-- PurchaseCommercialInsurance (rule A3): at most ratio% of the available balance, rounded down.
-- ARGV: 2 amount, 3 ratio percent, 4 insurer_code, 5 policy_no, 6 fencing token, 7 entry_id.
local stored = replay(MARKER, FP)
if stored then return stored end
local a = load(1)
local refused = refuse_payment(a) or refuse_fence(a, ARGV[6])
if refused then return refused end
local amount, ratio, policy_no = N(ARGV[2]), N(ARGV[3]), ARGV[5]
if redis.call('HEXISTS', key(a, 6), policy_no) == 1 then
  return fail('POLICY_NO_IN_USE', 'this policy_no was already bought from this account')
end
-- Split so that no product exceeds 2^53 (Lua numbers are doubles).
local avail = available(a)
local limit = math.floor(avail / 100) * ratio + math.floor((avail % 100) * ratio / 100)
if amount > limit then
  return fail('COMMERCIAL_LIMIT_EXCEEDED',
              'at most ' .. I(limit) .. ' fen (' .. I(ratio) .. '% of the available balance)')
end
expire_due(a)
a.fence = math.max(a.fence, N(ARGV[6]))
local e = append(a, ARGV[7], ENTRY_KIND_COMMERCIAL_INSURANCE, -amount, ARGV[4] .. ':' .. policy_no)
redis.call('HSET', key(a, 6), policy_no, cjson.encode({amount = I(amount), insurer = ARGV[4],
           entry_id = ARGV[7], state = 'ACTIVE'}))
save(a)
return finish(MARKER, FP, e)
