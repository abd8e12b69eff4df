-- StopInsurance (停保, rule A9). ARGV: 2 the StopReason.
-- The stop is an attribute beside the status: a stopped account pays nothing (lib.lua:
-- is_stopped), records no contributions and binds nobody; credits, refunds,
-- withdrawal (with the matching reason, A4) and transfer stay possible. The same reason again
-- returns the account unchanged; another reason is refused. The aid quotas he funds end with it
-- (N4).
local stored = replay(MARKER, FP)
if stored then return stored end
local a = load(1)
if not a then return fail('ACCOUNT_NOT_FOUND', 'no such account') end
if a.stop == ARGV[2] then return finish(MARKER, FP, view(a)) end
if is_closed(a) then return fail('ACCOUNT_CLOSED', 'the account is closed') end
if not has_personal(a) then
  return fail('NO_PERSONAL_ACCOUNT', 'resident-insured persons have no personal account')
end
if is_stopped(a) then
  return fail('INSURANCE_STOPPED', 'the insurance is already stopped for another reason')
end
a.stop, a.stopped_ms = ARGV[2], I(now())
end_quotas(a, QUOTA_END_REASON_INSURANCE_ENDED)  -- N4: what he set aside is his again
save(a)
save_marks(a)
emit(a, 'STOPPED')
return finish(MARKER, FP, view(a))
