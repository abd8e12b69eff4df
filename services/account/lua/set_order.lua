-- SetFamilyAidOrder: the beneficiary's payers in their order (rule B10) and his aid quotas,
-- oldest first (N3), as the binding service last set them. ARGV: 2 version, 3 JSON list of
-- [person_id, binding_id], 4 JSON list of [funder_id, quota_id]. A version not above the stored
-- one changes nothing: a late copy never overwrites a newer order. The quota list is kept only
-- when it has anything in it (most people have none).
local a = load(1)
if not a then return fail('ACCOUNT_NOT_FOUND', 'the beneficiary has no account') end
if N(ARGV[2]) > a.payers_v then
  redis.call('HSET', KEYS[1], 'payers', ARGV[3], 'payers_v', ARGV[2])
  if ARGV[4] ~= '[]' then redis.call('HSET', KEYS[1], 'quotas', ARGV[4])
  else redis.call('HDEL', KEYS[1], 'quotas') end
  a.payers_v = N(ARGV[2])
end
return cjson.encode({person_id = a.person_id, version = I(a.payers_v),
                     payers = redis.call('HGET', KEYS[1], 'payers') or '[]',
                     quotas = redis.call('HGET', KEYS[1], 'quotas') or '[]'})
