-- One hold of CommitHolds: its amount becomes a debit entry. ARGV: 2 hold_id, 3 entry_id.
-- Committed already: the same entry again. Voided, expired or unknown: HOLD_NOT_PLACED.
if not exists() then return fail('ACCOUNT_NOT_FOUND', 'no such account') end
local raw = redis.call('HGET', HOLDS, ARGV[2])
if not raw then return fail('HOLD_NOT_PLACED', 'no such hold') end
local h = cjson.decode(raw)
if h.state == 'COMMITTED' then return cjson.encode(entry_by_id(h.entry_id)) end
if h.state ~= 'PLACED' then
  return fail('HOLD_NOT_PLACED', 'this hold was ' .. string.lower(h.state))
end
local amount = N(h.amount)
redis.call('HINCRBY', ACCT, 'held', -amount)
redis.call('ZREM', HEXP, ARGV[2])
local e = append_entry(ARGV[3], h.kind, -amount, h.reference)
h.state, h.entry_id = 'COMMITTED', ARGV[3]
redis.call('HSET', HOLDS, ARGV[2], cjson.encode(h))
return cjson.encode(e)
