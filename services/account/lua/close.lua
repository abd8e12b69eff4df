-- WithdrawBalance (rule A4) and TransferAccount to another province (rule A5): the whole
-- balance leaves as one entry and the account closes for every use.
-- ARGV: 2 new status (CLOSED or TRANSFERRED_OUT), 3 entry kind, 4 where the money went (payee
-- or region), 5 fencing token, 6 entry_id.
if not exists() then return fail('ACCOUNT_NOT_FOUND', 'no such account') end
if ARGV[2] == CLOSED and get('type') ~= EMPLOYEE then
  return fail('NO_PERSONAL_ACCOUNT', 'resident-insured persons have no personal account')
end
if is_closed(get('status')) then return fail('ACCOUNT_CLOSED', 'the account is closed') end
if N(get('held')) > 0 then
  return fail('OPEN_HOLDS', 'payments in flight must finish first')
end
local refused = check_fence(ARGV[5])
if refused then return refused end
remember_fence(ARGV[5])
local e = {}
if get('type') == EMPLOYEE then
  e = append_entry(ARGV[6], ARGV[3], -N(get('balance')), ARGV[4])
end
redis.call('HSET', ACCT, 'status', ARGV[2], 'closed_to', ARGV[4])
emit(ARGV[2] == CLOSED and 'CLOSED' or 'TRANSFERRED_OUT')
return finish({entry = e, account = view()})
