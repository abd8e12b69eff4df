-- Undo a hold this same PlaceHolds call placed, when a later hold of the call was refused:
-- the record goes too, so the refused request changed nothing and may be retried.
-- ARGV: 2 hold_id.
local a = load(1)
if not a then return cjson.encode({}) end
local raw = redis.call('HGET', key(a, 3), ARGV[2])
if not raw or a.due[ARGV[2]] then return cjson.encode({}) end
local h = cjson.decode(raw)
if h.state == 'PLACED' then
  a.held = a.held - N(h.amount)
  redis.call('ZREM', key(a, 4), ARGV[2])
  redis.call('HDEL', key(a, 3), ARGV[2])
  save(a)
end
return cjson.encode(h)
