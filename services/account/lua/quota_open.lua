-- OpenQuota (rules N1, N2, B14): a new aid quota on its funder's account, ACTIVE with its amount
-- set aside at once, or awaiting the relative's consent with nothing set aside (its amount must
-- be available now too, and is checked again when it is confirmed). The funder's
-- pair and limit rules and his available balance are checked here, in the same step as the
-- reservation, so no two grants can pass them together.
-- ARGV: 2 quota_id, 3 relative, 4 relationship, 5 amount, 6 max_quotas, 7 '1' = awaits consent,
-- 8 grant sequence, 9 created ms, 10 fencing token (the funder's lock).
-- A quota opened before (or ended before it was opened: quota_close.lua) is returned as it is.
local quota_id, relative, amount = ARGV[2], ARGV[3], N(ARGV[5])
local a = load(1)
local q = a and read_quota(a, quota_id)
if q then
  if q.relative ~= relative or q.relationship ~= ARGV[4] or q.seq ~= ARGV[8] then
    return fail('IDEMPOTENCY_CONFLICT', 'quota_id was opened before with other content')
  end
  return cjson.encode(quota_view(a.person_id, quota_id, q))
end
if not a then return fail('ACCOUNT_NOT_FOUND', 'the funder has no account') end
if a.type ~= INSURANCE_TYPE_EMPLOYEE then
  return fail('BINDER_NOT_EMPLOYEE', 'only an employee with a personal account grants a quota')
end
if a.status == ACCOUNT_STATUS_SUSPENDED then
  return fail('ACCOUNT_SUSPENDED', "the funder's account is suspended")
end
if is_closed(a) then return fail('ACCOUNT_CLOSED', "the funder's account is closed") end
if is_stopped(a) then return fail('INSURANCE_STOPPED', "the funder's insurance is stopped") end
local live, all = 0, redis.call('HGETALL', key(a, 12))
for i = 1, #all, 2 do
  local other = quota_of(all[i + 1])
  if other.status ~= QUOTA_STATUS_ENDED then
    live = live + 1
    if other.relative == relative then
      return fail('QUOTA_EXISTS', 'this relative already has a quota from this funder')
    end
  end
end
if live >= N(ARGV[6]) then
  return fail('QUOTA_LIMIT_REACHED', 'the funder already has ' .. ARGV[6] .. ' quotas')
end
local pending = ARGV[7] == '1'
if amount > available(a) then  -- also for one awaiting consent: checked again at its yes
  return fail('INSUFFICIENT_FUNDS', 'the quota is more than the available balance')
end
local refused = refuse_fence(a, ARGV[10])
if refused then return refused end
q = {relative = relative, relationship = ARGV[4], granted = amount, used = 0,
     status = pending and QUOTA_STATUS_PENDING_CONSENT or QUOTA_STATUS_ACTIVE, reason = '0',
     created_ms = ARGV[9], ended_ms = '0', seq = ARGV[8]}
keep_quota(a, quota_id, q)
if not pending then
  reserve(a, amount)
  save(a)
end
return cjson.encode(quota_view(a.person_id, quota_id, q))
