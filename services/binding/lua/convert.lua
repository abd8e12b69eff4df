-- A person's views kept in the earlier layout (a set, zsets, a list and keys per pair) moved
-- into his one hash (services.binding.upgrade). What his hash holds already stays; the payers
-- it lists come after those of the old list.
-- KEYS: 1 his hash, 2 active set, 3 history as binder, 4 history as beneficiary, 5 payer list,
--       6 its version, 7... pair keys
-- ARGV: the beneficiary of each pair key, in the same order
-- Returns how many payers his list holds.
local views = KEYS[1]
for i = 7, #KEYS do
  local id = redis.call('GET', KEYS[i])
  if id then redis.call('HSETNX', views, 'pair:' .. ARGV[i - 6], id) end
end
for part, prefix in pairs({[3] = 'a:', [4] = 'e:'}) do
  local listed = redis.call('ZRANGE', KEYS[part], 0, -1, 'WITHSCORES')
  for i = 1, #listed, 2 do redis.call('HSETNX', views, prefix .. listed[i], listed[i + 1]) end
end
local ids, seen = redis.call('LRANGE', KEYS[5], 0, -1), {}
for _, id in ipairs(ids) do seen[id] = true end
for _, id in ipairs(ids_of(views)) do
  if not seen[id] then ids[#ids + 1] = id end
end
place_payers(views, ids, 1)
local version = tonumber(redis.call('GET', KEYS[6]) or '0')
if version > tonumber(redis.call('HGET', views, 'v') or '0') then
  redis.call('HSET', views, 'v', version)
end
redis.call('DEL', unpack(KEYS, 2))
return #ids
