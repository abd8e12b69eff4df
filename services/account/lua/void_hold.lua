-- One hold of VoidHolds. ARGV: 2 hold_id. Voided or expired: returned unchanged. Committed:
-- HOLD_NOT_PLACED. Unknown: recorded as VOIDED, so a late PlaceHolds of it is refused (a
-- recovering coordinator may void holds whose placement it never saw answered).
local a = load(1)
if not a then return fail('ACCOUNT_NOT_FOUND', 'no such account') end
local raw = redis.call('HGET', key(a, 3), ARGV[2])
local h = raw and cjson.decode(raw)
if h and h.state == 'COMMITTED' then
  return fail('HOLD_NOT_PLACED', 'this hold was committed')
end
expire_due(a)
if not h then
  h = {hold_id = ARGV[2], person_id = a.person_id, amount = '0', state = 'VOIDED',
       expires_ms = I(NOW), kind = '', reference = '', fence = '0', entry_id = ''}
  redis.call('HSET', key(a, 3), ARGV[2], cjson.encode(h))
  return cjson.encode(h)
end
h = cjson.decode(redis.call('HGET', key(a, 3), ARGV[2]))  -- expire_due may have expired it
if h.state == 'PLACED' then
  a.held = a.held - N(h.amount)
  redis.call('ZREM', key(a, 4), ARGV[2])
  h.state = 'VOIDED'
  redis.call('HSET', key(a, 3), ARGV[2], cjson.encode(h))
  save(a)
end
return cjson.encode(h)
