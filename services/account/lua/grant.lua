-- GrantFamilyAid: the binder's account may pay for the beneficiary under this binding, inside
-- its dates (rule B9). Written before the binding exists and revoked after it ends, so an account
-- never pays under a binding that is not there. ARGV: 2 binding_id, 3 beneficiary_id,
-- 4 start_date, 5 end_date ('' = open). A revoked grant stays revoked.
local a = load(1)
if not a then return fail('ACCOUNT_NOT_FOUND', 'the binder has no account') end
local raw = redis.call('HGET', key(a, 8), ARGV[2])
if raw then
  local g = grant_of(a, ARGV[2], raw)
  if g.active and (g.beneficiary_id ~= ARGV[3] or g.start_date ~= ARGV[4]
                   or g.end_date ~= ARGV[5]) then
    return fail('IDEMPOTENCY_CONFLICT', 'binding_id was granted before with other content')
  end
  return cjson.encode(g)
end
local g = {binder_id = a.person_id, beneficiary_id = ARGV[3], binding_id = ARGV[2],
           start_date = ARGV[4], end_date = ARGV[5], active = true}
keep_grant(a, g)
return cjson.encode(g)
