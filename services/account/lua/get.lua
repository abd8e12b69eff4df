-- GetAccount (after due holds expire). No ARGV beyond the fingerprint ('').
if not exists() then return fail('ACCOUNT_NOT_FOUND', 'no such account') end
return cjson.encode(view())
