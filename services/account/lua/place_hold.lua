-- One hold of PlaceHolds. ARGV: 2 hold_id, 3 amount, 4 fencing token, 5 entry kind,
-- 6 reference, 7 lifetime ms. The hold_id is the idempotency key: the same hold again returns
-- it as it stands; a voided or expired one is not placed again.
local hold_id, amount = ARGV[2], N(ARGV[3])
local raw = redis.call('HGET', HOLDS, hold_id)
if raw then
  local h = cjson.decode(raw)
  if h.state == 'VOIDED' or h.state == 'EXPIRED' then
    return fail('HOLD_NOT_PLACED', 'this hold was ' .. string.lower(h.state))
  end
  if N(h.amount) ~= amount or h.kind ~= ARGV[5] or h.reference ~= ARGV[6] then
    return fail('IDEMPOTENCY_CONFLICT', 'hold_id was used before with other content')
  end
  return cjson.encode(h)
end
local refused = check_can_pay() or check_fence(ARGV[4])
if refused then return refused end
if available() < amount then
  return fail('INSUFFICIENT_FUNDS', 'the available balance is lower than the hold')
end
remember_fence(ARGV[4])
local expires = NOW + N(ARGV[7])
local h = {hold_id = hold_id, person_id = get('person_id'), amount = I(amount), state = 'PLACED',
           expires_ms = I(expires), kind = ARGV[5], reference = ARGV[6], fence = ARGV[4],
           entry_id = ''}
redis.call('HSET', HOLDS, hold_id, cjson.encode(h))
redis.call('ZADD', HEXP, expires, hold_id)
redis.call('HINCRBY', ACCT, 'held', amount)
h.placed_now = true  -- tells the caller this call placed it (not stored)
return cjson.encode(h)
