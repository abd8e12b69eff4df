-- ConfirmBinding (B14), both people in one province: ACTIVE and last on his payer list,
-- atomically.
-- KEYS: 1 record, 2 beneficiary's views, 3 order outbox, 4 consent due
-- ARGV: 1 binding id, 2 now ms, 3 created ms, 4 beneficiary
-- Returns the refusal (lib.lua `activate`: 'gone', 'unchanged', 'overdue'), or the priority it
-- got.
local refused = activate(KEYS[1], KEYS[4], ARGV[1], ARGV[2])
if refused then return refused end
redis.call('HDEL', KEYS[2], 'w:' .. ARGV[1])
return tostring(add_view(KEYS[2], KEYS[3], ARGV[1], ARGV[3], ARGV[4]))
