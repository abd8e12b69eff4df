-- ActivateQuota (rule B14): a quota the relative confirmed, ACTIVE and set aside now, if the
-- funder may still pay and has it available; anything but a pending quota is returned as it is.
-- ARGV: 2 quota_id, 3 fencing token (the funder's lock).
local quota_id = ARGV[2]
local a = load(1)
local q = a and read_quota(a, quota_id)
if not q then return fail('QUOTA_NOT_FOUND', 'no such quota') end
if q.status ~= QUOTA_STATUS_PENDING_CONSENT then
  return cjson.encode(quota_view(a.person_id, quota_id, q))
end
-- (A stop, a closure or a change to resident ended it already: N4.)
if a.status == ACCOUNT_STATUS_SUSPENDED then
  return fail('ACCOUNT_SUSPENDED', "the funder's account is suspended")
end
if q.granted - q.used > available(a) then
  return fail('INSUFFICIENT_FUNDS', 'the quota is more than the available balance')
end
local refused = refuse_fence(a, ARGV[3])
if refused then return refused end
q.status = QUOTA_STATUS_ACTIVE
keep_quota(a, quota_id, q)
reserve(a, q.granted - q.used)
save(a)
return cjson.encode(quota_view(a.person_id, quota_id, q))
