-- ChangeInsuranceType (变更参保险种, rule A9). ARGV: 2 the new InsuranceType.
-- The account, its balance and its history are kept. Employee -> resident: the account is kept
-- (`kept`) and still pays his own bills and his own premium, never a relative's; his bindings as
-- binder lapse through the event (TYPE_CHANGED). Resident -> employee: an employee's account.
-- The same type returns it unchanged.
local stored = replay(MARKER, FP)
if stored then return stored end
local a = load(1)
if not a then return fail('ACCOUNT_NOT_FOUND', 'no such account') end
if is_closed(a) then return fail('ACCOUNT_CLOSED', 'the account is closed') end
if a.type == ARGV[2] then return finish(MARKER, FP, view(a)) end
if is_stopped(a) then
  return fail('INSURANCE_STOPPED', 'the insurance is stopped: its type cannot change')
end
a.type, a.kept = ARGV[2], ARGV[2] == INSURANCE_TYPE_RESIDENT
if a.kept then end_quotas(a, QUOTA_END_REASON_FUNDER_NOT_EMPLOYEE) end  -- N4
save(a)
save_marks(a)
emit(a, 'TYPE_CHANGED')
return finish(MARKER, FP, view(a))
