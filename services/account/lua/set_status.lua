-- SuspendAccount / ResumeAccount (rule A6). ARGV: 2 target status (SUSPENDED or ACTIVE),
-- 3 reason. Already in the target state: unchanged. Closed accounts: ACCOUNT_CLOSED.
local stored = replay(MARKER, FP)
if stored then return stored end
local a = load(1)
if not a then return fail('ACCOUNT_NOT_FOUND', 'no such account') end
if is_closed(a) then return fail('ACCOUNT_CLOSED', 'the account is closed') end
if a.status ~= ARGV[2] then
  a.status = ARGV[2]
  redis.call('HSET', KEYS[1], 'suspend_reason', ARGV[3])
  save(a)
  emit(a, ARGV[2] == ACCOUNT_STATUS_SUSPENDED and 'SUSPENDED' or 'RESUMED')
end
return finish(MARKER, FP, view(a))
