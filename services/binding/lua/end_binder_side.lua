-- A binding's end across two provinces, its first step: the binder's side, marked `views-due`
-- until the beneficiary's side is written; its grant marked to be revoked. As end.lua otherwise.
-- KEYS: 1 record, 2 binder's views, 3 views due, 4 consent due, 5 revokes due
-- ARGV: 1 binding id, 2 new status, 3 ended ms, 4 the time of the mark (ms), 5 beneficiary,
--       6 which ('any' or 'pending')
-- Returns the record JSON, or '' when there is no such binding.
local raw, ended = end_binder_side(KEYS[1], KEYS[2], KEYS[5], ARGV[1], ARGV[5], ARGV[2], ARGV[3],
                                   ARGV[6], ARGV[4])
if ended then
  redis.call('ZADD', KEYS[3], ARGV[4], ARGV[1])
  redis.call('ZREM', KEYS[4], ARGV[1])
end
return raw
