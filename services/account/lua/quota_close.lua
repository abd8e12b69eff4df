-- CloseQuota (rules N2, N4, B14): the quota ENDED for a reason and what remains of it released,
-- in one step. One that ended before is returned as it is; `only_pending` ends it only while it
-- awaits consent. A quota never opened is recorded ENDED (granted 0), so that an OpenQuota of it
-- arriving late finds it ended and sets nothing aside.
-- ARGV: 2 quota_id, 3 reason, 4 '1' = only if pending, 5 relative, 6 relationship, 7 grant
-- sequence, 8 created ms (what a quota never opened keeps), 9 fencing token (the funder's lock).
local quota_id = ARGV[2]
local a = load(1)
if not a then return fail('QUOTA_NOT_FOUND', 'the funder has no account') end
local q = read_quota(a, quota_id)
if not q then
  q = {relative = ARGV[5], relationship = ARGV[6], granted = 0, used = 0,
       status = QUOTA_STATUS_ENDED, reason = ARGV[3], created_ms = ARGV[8], ended_ms = I(now()),
       seq = ARGV[7]}
  keep_quota(a, quota_id, q)
  return cjson.encode(quota_view(a.person_id, quota_id, q))
end
if q.status == QUOTA_STATUS_ENDED
   or (ARGV[4] == '1' and q.status ~= QUOTA_STATUS_PENDING_CONSENT) then
  return cjson.encode(quota_view(a.person_id, quota_id, q))
end
local refused = refuse_fence(a, ARGV[9])
if refused then return refused end
end_quota(a, quota_id, q, ARGV[3])
save(a)
return cjson.encode(quota_view(a.person_id, quota_id, q))
