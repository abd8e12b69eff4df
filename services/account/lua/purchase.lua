-- PurchaseCommercialInsurance (rule A3): this calendar year's purchases not cancelled, S, and
-- this one, x, stay within ratio% of the accumulated balance: S + x <= ratio * (A + S) // 100,
-- A the available balance before the purchase. So several purchases together never pass it.
-- ARGV: 2 amount, 3 ratio percent, 4 insurer_code, 5 policy_no, 6 fencing token, 7 entry_id,
-- 8 the Beijing year, 9 '1' when the insurer is a partner (registry), 10 the kind (health or
-- accident, CommercialInsuranceKind).
local stored = replay(MARKER, FP)
if stored then return stored end
local a = load(1)
local refused = refuse_payment(a) or refuse_fence(a, ARGV[6])
if refused then return refused end
if ARGV[9] ~= '1' then
  return fail('INSURER_NOT_PARTNER', 'the insurer has no agreement (registry)')
end
local amount, ratio, policy_no, year = N(ARGV[2]), N(ARGV[3]), ARGV[5], ARGV[8]
if redis.call('HEXISTS', key(a, 6), policy_no) == 1 then
  return fail('POLICY_NO_IN_USE', 'this policy_no was already bought from this account')
end
local spent = 0
for _, raw in ipairs(redis.call('HVALS', key(a, 6))) do
  local p = cjson.decode(raw)
  -- A record from before years were kept counts as this year's: the cap errs on the safe side.
  if p.state == 'ACTIVE' and (p.year == nil or p.year == year) then spent = spent + N(p.amount) end
end
local limit = share(available(a) + spent, ratio, 100) - spent
if amount > limit then
  return fail('COMMERCIAL_LIMIT_EXCEEDED', 'at most ' .. I(math.max(limit, 0)) .. ' fen more in '
              .. year .. ' (' .. I(ratio) .. '% of the available balance and this year\'s purchases)')
end
local e = append(a, ARGV[7], ENTRY_KIND_COMMERCIAL_INSURANCE, -amount, ARGV[4] .. ':' .. policy_no)
redis.call('HSET', key(a, 6), policy_no, cjson.encode({amount = I(amount), insurer = ARGV[4],
           entry_id = e.entry_id, state = 'ACTIVE', year = year, kind = N(ARGV[10])}))
save(a)
return finish(MARKER, FP, e)
