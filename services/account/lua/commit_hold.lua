-- One hold of CommitHolds: its amount becomes a debit entry. ARGV: 2 hold_id, 3 entry_id.
-- Committed already: the same entry again. Voided, expired or unknown: HOLD_NOT_PLACED.
local a = load(1)
if not a then return fail('ACCOUNT_NOT_FOUND', 'no such account') end
local raw = redis.call('HGET', key(a, 3), ARGV[2])
if not raw then return fail('HOLD_NOT_PLACED', 'no such hold') end
local h = cjson.decode(raw)
if h.state == 'COMMITTED' then return entry_answer(a, h.entry_id) end
if a.due[ARGV[2]] then return fail('HOLD_NOT_PLACED', 'this hold was expired') end
if h.state ~= 'PLACED' then
  return fail('HOLD_NOT_PLACED', 'this hold was ' .. string.lower(h.state))
end
expire_due(a)
local amount = N(h.amount)
a.held = a.held - amount
redis.call('ZREM', key(a, 4), ARGV[2])
local e = append(a, ARGV[3], h.kind, -amount, h.reference)
h.state, h.entry_id = 'COMMITTED', e.entry_id
redis.call('HSET', key(a, 3), ARGV[2], cjson.encode(h))
save(a)
return cjson.encode(e)
