-- An account read for a payment or an account operation, under its lock (services/account/
-- locks.py); with no owner token, read only (a quote).
-- KEYS: 1 the account. ARGV: 2 owner token ('' = read only), 3 what the lock is for (a payment
-- id, or '-' for the account's own operation), 4 lease ms, 5 a binding id whose family-aid grant
-- to read ('' = none), 6 a premium's mark to read ('' = none), 7 the aid quotas to read (their
-- ids, space-separated).
-- Returns {fields = the account's FIELDS as HMGET gave them, fence = the fencing token of this
-- lock (the previous one incremented: an exact decimal string), grant, year_paid, quotas = {id:
-- its record as kept}, at_ms}; {} for
-- no account (nothing to lock, nothing to pay from); {busy = true, what} while another holder's
-- lease runs; {resolve = payment, fence, token} when a holder's lease ran out with a payment's lock:
-- that payment's step on this account comes first (Stepwise.resolve), then a new try.
local v = redis.call('HMGET', KEYS[1], unpack(FIELDS))
local a = from_fields(1, v)
if not a then return '{}' end
local token = ARGV[2]
if token ~= '' then
  local held = a.lock
  if held and held.token ~= token then
    if now() < held.ends then return cjson.encode({busy = true, what = held.what}) end
    if held.what ~= '-' then
      return cjson.encode({resolve = held.what, fence = a.fence, token = held.token})
    end
  end
  if not (held and held.token == token) then a.fence = fence_next(a.fence) end
  redis.call('HSET', KEYS[1], 'fence', a.fence,
             'lock', token .. ' ' .. ARGV[3] .. ' ' .. I(now() + N(ARGV[4])))
end
local out = {fields = v, fence = a.fence, at_ms = I(now()), grant = false, year_paid = false,
             quotas = {}}
if ARGV[5] ~= '' then out.grant = redis.call('HGET', key(a, 8), ARGV[5]) end
if ARGV[6] ~= '' then out.year_paid = redis.call('EXISTS', KEYS[1] .. ':premium:' .. ARGV[6]) == 1 end
for quota_id in string.gmatch(ARGV[7] or '', '%S+') do
  out.quotas[quota_id] = redis.call('HGET', key(a, 12), quota_id) or false
end
return cjson.encode(out)
