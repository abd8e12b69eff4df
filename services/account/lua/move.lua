-- TransferAccount inside the province (rule A5): the region changes, the balance stays.
-- ARGV: 2 new region code.
if not exists() then return fail('ACCOUNT_NOT_FOUND', 'no such account') end
if is_closed(get('status')) then return fail('ACCOUNT_CLOSED', 'the account is closed') end
if get('region') == ARGV[2] then
  return fail('INVALID_REGION_CODE', 'to_region_code is the current region')
end
redis.call('HSET', ACCT, 'region', ARGV[2])
emit('REGION_CHANGED')
return finish(view())
