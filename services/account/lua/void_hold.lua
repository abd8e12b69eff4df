-- One hold of VoidHolds. ARGV: 2 hold_id. Voided or expired: returned unchanged. Committed:
-- HOLD_NOT_PLACED. Unknown: recorded as VOIDED, so a late PlaceHolds of it is refused (a
-- recovering coordinator may void holds whose placement it never saw answered).
if not exists() then return fail('ACCOUNT_NOT_FOUND', 'no such account') end
local raw = redis.call('HGET', HOLDS, ARGV[2])
local h
if raw then
  h = cjson.decode(raw)
else
  h = {hold_id = ARGV[2], person_id = get('person_id'), amount = '0', state = 'VOIDED',
       expires_ms = I(NOW), kind = '', reference = '', fence = '0', entry_id = ''}
  redis.call('HSET', HOLDS, ARGV[2], cjson.encode(h))
  return cjson.encode(h)
end
if h.state == 'COMMITTED' then return fail('HOLD_NOT_PLACED', 'this hold was committed') end
if h.state == 'PLACED' then
  redis.call('HINCRBY', ACCT, 'held', -N(h.amount))
  redis.call('ZREM', HEXP, ARGV[2])
  h.state = 'VOIDED'
  redis.call('HSET', HOLDS, ARGV[2], cjson.encode(h))
end
return cjson.encode(h)
