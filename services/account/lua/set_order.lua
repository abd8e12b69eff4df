-- SetFamilyAidOrder: the beneficiary's payers in their order (rule B10), as the binding service
-- last set it. ARGV: 2 version, 3 JSON list of [person_id, binding_id]. A version not above the
-- stored one changes nothing: a late copy never overwrites a newer order.
local a = load(1)
if not a then return fail('ACCOUNT_NOT_FOUND', 'the beneficiary has no account') end
if N(ARGV[2]) > a.payers_v then
  redis.call('HSET', KEYS[1], 'payers', ARGV[3], 'payers_v', ARGV[2])
  a.payers_v = N(ARGV[2])
end
return cjson.encode({person_id = a.person_id, version = I(a.payers_v),
                     payers = redis.call('HGET', KEYS[1], 'payers') or '[]'})
