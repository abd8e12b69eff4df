-- RevokeFamilyAid: the binder's account no longer pays under this binding. ARGV: 2 binding_id.
-- Revoking a grant never made leaves it revoked, so a late grant of it cannot take effect.
local a = load(1)
if not a then return fail('ACCOUNT_NOT_FOUND', 'the binder has no account') end
local raw = redis.call('HGET', key(a, 8), ARGV[2])
local g = raw and grant_of(a, ARGV[2], raw) or {binder_id = a.person_id, beneficiary_id = '',
                                                binding_id = ARGV[2], start_date = '',
                                                end_date = ''}
if raw and not g.active then return cjson.encode(g) end
g.active = false
keep_grant(a, g)
return cjson.encode(g)
