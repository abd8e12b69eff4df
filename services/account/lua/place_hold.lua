-- One hold of PlaceHolds. ARGV: 2 hold_id, 3 amount, 4 fencing token, 5 entry kind,
-- 6 reference, 7 lifetime ms. The hold_id is the idempotency key: the same hold again returns
-- it as it stands; a voided or expired one is not placed again.
local hold_id, amount = ARGV[2], N(ARGV[3])
local a = load(1)
if not a then return fail('ACCOUNT_NOT_FOUND', 'no such account') end
local raw = redis.call('HGET', key(a, 3), hold_id)
if raw then
  local h = cjson.decode(raw)
  local state = a.due[hold_id] and 'EXPIRED' or h.state
  if state == 'VOIDED' or state == 'EXPIRED' then
    return fail('HOLD_NOT_PLACED', 'this hold was ' .. string.lower(state))
  end
  if N(h.amount) ~= amount or h.kind ~= ARGV[5] or h.reference ~= ARGV[6] then
    return fail('IDEMPOTENCY_CONFLICT', 'hold_id was used before with other content')
  end
  return raw
end
local refused = refuse_payment(a) or refuse_fence(a, ARGV[4])
if refused then return refused end
if available(a) < amount then
  return fail('INSUFFICIENT_FUNDS', 'the available balance is lower than the hold')
end
expire_due(a)
a.fence = math.max(a.fence, N(ARGV[4]))
local expires = NOW + N(ARGV[7])
local h = {hold_id = hold_id, person_id = a.person_id, amount = I(amount), state = 'PLACED',
           expires_ms = I(expires), kind = ARGV[5], reference = ARGV[6], fence = ARGV[4],
           entry_id = ''}
redis.call('HSET', key(a, 3), hold_id, cjson.encode(h))
redis.call('ZADD', key(a, 4), I(expires), hold_id)
a.held = a.held + amount
save(a)
h.placed_now = true  -- tells the caller this call placed it (not stored)
return cjson.encode(h)
