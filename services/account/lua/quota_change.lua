-- ChangeQuotaAmount (rule N2): the quota's new total granted, never below what is used; a raise
-- needs the extra available (and an account not suspended), and is set aside with it.
-- ARGV: 2 quota_id, 3 the new amount, 4 fencing token (the funder's lock).
local quota_id, amount = ARGV[2], N(ARGV[3])
local a = load(1)
local q = a and read_quota(a, quota_id)
if not q then return fail('QUOTA_NOT_FOUND', 'no such quota') end
if q.status == QUOTA_STATUS_ENDED then return fail('QUOTA_ENDED', 'the quota has ended') end
if amount < q.used then
  return fail('QUOTA_BELOW_USED', 'the quota cannot be less than the ' .. I(q.used) .. ' fen used')
end
local extra = amount - q.granted
if extra > 0 then
  if a.status == ACCOUNT_STATUS_SUSPENDED then
    return fail('ACCOUNT_SUSPENDED', "the funder's account is suspended: no raise")
  end
  local room = q.status == QUOTA_STATUS_ACTIVE and extra or amount - q.used  -- pending: all
  if room > available(a) then
    return fail('INSUFFICIENT_FUNDS', 'the raise is more than the available balance')
  end
end
local refused = refuse_fence(a, ARGV[4])
if refused then return refused end
q.granted = amount
keep_quota(a, quota_id, q)
if q.status == QUOTA_STATUS_ACTIVE and extra ~= 0 then
  reserve(a, extra)
  save(a)
end
return cjson.encode(quota_view(a.person_id, quota_id, q))
