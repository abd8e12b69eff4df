-- ConfirmBinding across two provinces, its first step: the binder's side, marked `views-due`
-- like any change there; store.finish_across then adds it to the payer list.
-- KEYS: 1 record, 2 consent due, 3 views due
-- ARGV: 1 binding id, 2 now ms
-- Returns the refusal (lib.lua `activate`), or '0'.
local refused = activate(KEYS[1], KEYS[2], ARGV[1], ARGV[2])
if refused then return refused end
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
return '0'
