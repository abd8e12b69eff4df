-- SuspendAccount / ResumeAccount (rule A6). ARGV: 2 target status (SUSPENDED or ACTIVE),
-- 3 reason. Already in the target state: unchanged. Closed accounts: ACCOUNT_CLOSED.
if not exists() then return fail('ACCOUNT_NOT_FOUND', 'no such account') end
local status = get('status')
if is_closed(status) then return fail('ACCOUNT_CLOSED', 'the account is closed') end
if status ~= ARGV[2] then
  redis.call('HSET', ACCT, 'status', ARGV[2], 'suspend_reason', ARGV[3])
  emit(ARGV[2] == SUSPENDED and 'SUSPENDED' or 'RESUMED')
end
return finish(view())
