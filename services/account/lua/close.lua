-- WithdrawBalance (rule A4) and TransferAccount to another province (rule A5): the whole
-- balance leaves as one entry (0 fen for an empty account) and the account closes for every use.
-- ARGV: 2 new status (CLOSED or TRANSFERRED_OUT), 3 entry kind (WITHDRAWAL, or TRANSFER_OUT;
-- WITHDRAWAL also for a move to a province that cannot receive the balance), 4 where the money
-- went (payee or region), 5 fencing token, 6 entry_id, 7 the stop a withdrawal (CLOSED) needs
-- first (StopReason; a transfer needs none).
-- A later refund to the account is paid on the same way (credit_back: `closed_by`, `closed_to`).
local stored = replay(MARKER, FP)
if stored then return stored end
local a = load(1)
if not a then return fail('ACCOUNT_NOT_FOUND', 'no such account') end
if is_closed(a) then return fail('ACCOUNT_CLOSED', 'the account is closed') end
if ARGV[2] == ACCOUNT_STATUS_CLOSED then  -- a withdrawal
  if not has_personal(a) then
    return fail('NO_PERSONAL_ACCOUNT', 'resident-insured persons have no personal account')
  end
  if not is_stopped(a) then
    return fail('INSURANCE_NOT_STOPPED', 'a withdrawal needs the insurance stopped first (A4)')
  end
  if a.stop ~= ARGV[7] then
    return fail('WITHDRAWAL_NOT_ALLOWED', 'the insurance was stopped for another reason')
  end
end
local refused = refuse_fence(a, ARGV[5])
if refused then return refused end
-- N4: his aid quotas end first, so what was set aside leaves with the rest of the balance.
end_quotas(a, ARGV[2] == ACCOUNT_STATUS_CLOSED and QUOTA_END_REASON_INSURANCE_ENDED
              or QUOTA_END_REASON_MOVED)
local e = {}
-- (A resident's account holds money only when a refund of his employee years reached it after
-- it was opened again: that leaves with it too, so that no closed account holds anything.)
if has_personal(a) or a.balance ~= 0 then e = append(a, ARGV[6], ARGV[3], -a.balance, ARGV[4]) end
a.status, a.closed_to, a.closed_by = ARGV[2], ARGV[4], ARGV[3]
save(a)
save_marks(a)
emit(a, ARGV[2] == ACCOUNT_STATUS_CLOSED and 'CLOSED' or 'TRANSFERRED_OUT')
return finish(MARKER, FP, {entry = e, account = view(a)})
