-- GetAccount / BatchGetAccounts: the account as it stands. Reads only.
local a = load(1)
if not a then return fail('ACCOUNT_NOT_FOUND', 'no such account') end
return cjson.encode(view(a))
