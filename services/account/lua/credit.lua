-- Credit (rule A1). ARGV: 2 amount, 3 entry kind, 4 memo, 5 entry_id.
if not exists() then return fail('ACCOUNT_NOT_FOUND', 'no such account') end
if get('type') ~= EMPLOYEE then
  return fail('NO_PERSONAL_ACCOUNT', 'resident-insured persons have no personal account')
end
if is_closed(get('status')) then return fail('ACCOUNT_CLOSED', 'the account is closed') end
local amount = N(ARGV[2])
if N(get('balance')) + amount > MAX_BALANCE then
  return fail('INVALID_AMOUNT', 'the balance would exceed ' .. I(MAX_BALANCE) .. ' fen')
end
return finish(append_entry(ARGV[5], ARGV[3], amount, ARGV[4]))
