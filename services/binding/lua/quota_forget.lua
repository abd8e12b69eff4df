-- A grant the funder's account refused: nothing of it is kept (no view names it yet: the views
-- are written once the account has it).
-- KEYS: 1 the quota's record, 2 views-due, 3 consent-due (as quota_begin.lua)
-- ARGV: 1 quota id
-- Returns 0.
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
return 0
