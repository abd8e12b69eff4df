-- GrantQuota (N1), its first step: the quota's record, marked in views-due (and consent-due
-- when it awaits consent) until its two sides are written (services.binding.quotas). A record
-- there already (the same request before) is kept and returned: its grant sequence and time
-- stand.
-- KEYS: 1 the quota's record, 2 views-due, 3 consent-due (the funder's province's)
-- ARGV: 1 quota id, 2 record JSON, 3 now ms, 4 when it lapses unconfirmed ('0' = it needs no
--       consent)
-- Returns the record JSON as kept.
local raw = redis.call('GET', KEYS[1])
if not raw then
  redis.call('SET', KEYS[1], ARGV[2])
  if ARGV[4] ~= '0' then redis.call('ZADD', KEYS[3], ARGV[4], ARGV[1]) end
end
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
return raw or ARGV[2]
