-- Undo a hold this same PlaceHolds call placed, when a later hold of the call was refused:
-- the record goes too, so the refused request changed nothing and may be retried.
-- ARGV: 2 hold_id.
local raw = redis.call('HGET', HOLDS, ARGV[2])
if not raw then return cjson.encode({}) end
local h = cjson.decode(raw)
if h.state == 'PLACED' then
  redis.call('HINCRBY', ACCT, 'held', -N(h.amount))
  redis.call('ZREM', HEXP, ARGV[2])
  redis.call('HDEL', HOLDS, ARGV[2])
end
return cjson.encode(h)
