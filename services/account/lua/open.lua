-- OpenAccount. ARGV: 2 person_id, 3 name, 4 insurance_type, 5 region_code.
-- A closed or transferred-out account re-opens (ACTIVE, zero balance, history kept, the stop
-- of its insurance cleared).
local stored = replay(MARKER, FP)
if stored then return stored end
local a = load(1)
if a and not is_closed(a) then
  return fail('ACCOUNT_EXISTS', 'this person already has an account')
end
if a then
  redis.call('DEL', key(a, 8))  -- grants of bindings that lapsed with the closure
  a.name, a.type, a.region = ARGV[3], ARGV[4], ARGV[5]
  a.status, a.closed_to = ACCOUNT_STATUS_ACTIVE, ''
  a.stop, a.stopped_ms, a.kept, a.closed_by = '', '', false, ''  -- a new start (A9)
  save(a)
  save_marks(a)
  emit(a, 'REOPENED')
  return finish(MARKER, FP, view(a))
end
redis.call('HSET', KEYS[1], 'person_id', ARGV[2], 'name', ARGV[3], 'type', ARGV[4],
           'region', ARGV[5], 'status', ACCOUNT_STATUS_ACTIVE, 'balance', 0, 'held', 0, 'seq', 0,
           'fence', 0, 'opened_ms', I(now()), 'closed_to', '')
a = load(1)
emit(a, 'OPENED')
return finish(MARKER, FP, view(a))
