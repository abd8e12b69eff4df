-- CreateBinding across two provinces (a profile with same_province = false), its first step:
-- the binder's side, with the binding marked in the binder's province as `views-due` until the
-- beneficiary's side (beneficiary_side.lua) is written; the relay loop finishes what a crash
-- left (Lifecycle.relay). Each step can run again and again with the same outcome.
-- KEYS: 1 record, 2 binder's views, 3 idempotency record, 4 views due, 5 consent due, 6 void mark
-- ARGV: 1 fingerprint, 2 binding id, 3 record JSON, 4 binding limit, 5 created ms, 6 TTL s,
--       7 beneficiary, 8 when it lapses unconfirmed (ms; '0' = no consent needed)
-- Returns {binding = record, priority = 0, id} or {error = ...}, as create.lua does (the
-- priority is the beneficiary side's to give).
local refused = refuse_create(KEYS[3], KEYS[2], ARGV[7], ARGV[1], ARGV[4]) or voided(KEYS[6])
if refused then return refused end
add_binder_side(KEYS[1], KEYS[2], ARGV[2], ARGV[3], ARGV[5], ARGV[7])
redis.call('ZADD', KEYS[4], ARGV[5], ARGV[2])
if ARGV[8] ~= '0' then redis.call('ZADD', KEYS[5], ARGV[8], ARGV[2]) end
return created(KEYS[3], ARGV[1], ARGV[2], ARGV[3], 0, ARGV[6])
