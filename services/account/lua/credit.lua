-- Credit (rule A1). ARGV: 2 amount, 3 entry kind, 4 memo, 5 entry_id.
local stored = replay(MARKER, FP)
if stored then return stored end
local a = load(1)
if not a then return fail('ACCOUNT_NOT_FOUND', 'no such account') end
if not has_personal(a) then
  return fail('NO_PERSONAL_ACCOUNT', 'resident-insured persons have no personal account')
end
if is_closed(a) then return fail('ACCOUNT_CLOSED', 'the account is closed') end
local amount = N(ARGV[2])
if a.balance + amount > MAX_BALANCE then
  return fail('INVALID_AMOUNT', 'the balance would exceed ' .. I(MAX_BALANCE) .. ' fen')
end
local e = append(a, ARGV[5], ARGV[3], amount, ARGV[4])
save(a)
return finish(MARKER, FP, e)
