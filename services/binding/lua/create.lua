-- CreateBinding, both people in one province (B4, B7, B14): the record, the binder's side and
-- the beneficiary's, in one step.
-- KEYS: 1 record, 2 binder's views, 3 beneficiary's views, 4 idempotency record, 5 order outbox,
--       6 consent due, 7 the binding id's void mark (Lifecycle: a creation given up)
-- ARGV: 1 fingerprint, 2 binding id, 3 record JSON, 4 binding limit, 5 created ms, 6 TTL s,
--       7 beneficiary, 8 when it lapses unconfirmed (ms; '0' = ACTIVE at once, no consent)
-- Returns {binding = record, priority = n, id = its id} or {error = ...}; under a request
-- answered before, its answer (naming the binding that request made).
local refused = refuse_create(KEYS[4], KEYS[2], ARGV[7], ARGV[1], ARGV[4]) or voided(KEYS[7])
if refused then return refused end
add_binder_side(KEYS[1], KEYS[2], ARGV[2], ARGV[3], ARGV[5], ARGV[7])
local priority = 0
if ARGV[8] ~= '0' then
  redis.call('ZADD', KEYS[6], ARGV[8], ARGV[2])
  add_awaiting(KEYS[3], ARGV[2], ARGV[5])
else
  priority = add_view(KEYS[3], KEYS[5], ARGV[2], ARGV[5], ARGV[7])
end
return created(KEYS[4], ARGV[1], ARGV[2], ARGV[3], priority, ARGV[6])
