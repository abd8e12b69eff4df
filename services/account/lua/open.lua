-- OpenAccount. ARGV: 2 person_id, 3 name, 4 insurance_type, 5 region_code.
-- A closed or transferred-out account re-opens (ACTIVE, zero balance, history kept).
if exists() then
  if not is_closed(get('status')) then
    return fail('ACCOUNT_EXISTS', 'this person already has an account')
  end
  redis.call('HSET', ACCT, 'name', ARGV[3], 'type', ARGV[4], 'region', ARGV[5], 'status', ACTIVE,
             'closed_to', '')
  emit('REOPENED')
  return finish(view())
end
redis.call('HSET', ACCT, 'person_id', ARGV[2], 'name', ARGV[3], 'type', ARGV[4],
           'region', ARGV[5], 'status', ACTIVE, 'balance', 0, 'held', 0, 'seq', 0, 'fence', 0,
           'opened_ms', I(NOW))
emit('OPENED')
return finish(view())
