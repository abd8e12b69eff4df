-- TransferAccount inside the province (rule A5): the region changes, the balance stays.
-- ARGV: 2 new region code.
local stored = replay(MARKER, FP)
if stored then return stored end
local a = load(1)
if not a then return fail('ACCOUNT_NOT_FOUND', 'no such account') end
if is_closed(a) then return fail('ACCOUNT_CLOSED', 'the account is closed') end
if a.region == ARGV[2] then
  return fail('INVALID_REGION_CODE', 'to_region_code is the current region')
end
a.region = ARGV[2]
end_quotas(a, QUOTA_END_REASON_MOVED)  -- N4: any change of region ends the quotas he funds
save(a)
emit(a, 'REGION_CHANGED')
return finish(MARKER, FP, view(a))
