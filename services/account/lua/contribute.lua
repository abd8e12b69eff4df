-- RecordContribution (rule A8): one month of an employee's contribution, its allocation to the
-- personal account credited exactly once: the month is the key (KEYS part 11, month -> record),
-- so two deliveries of one month, at once or a year apart, credit once.
-- ARGV: 2 month, 3 base, 4 employee share, 5 employer share, 6 payer, 7 region ('' = the
-- account's), 8 allocation basis points, 9 entry_id.
local stored = replay(MARKER, FP)
if stored then return stored end
local a = load(1)
if not a then return fail('ACCOUNT_NOT_FOUND', 'no such account') end
local month = ARGV[2]
local region = ARGV[7] ~= '' and ARGV[7] or a.region
local raw = redis.call('HGET', key(a, 11), month)
if raw then  -- a delivery of a month already recorded: its record, whatever the account is now
  local c = cjson.decode(raw)
  if c.base_fen == ARGV[3] and c.employee_fen == ARGV[4] and c.employer_fen == ARGV[5]
     and c.payer == ARGV[6] and c.region_code == region then
    return finish(MARKER, FP, c)
  end
  return fail('CONTRIBUTION_EXISTS', month .. ' is recorded with other amounts, payer or region')
end
if a.type ~= INSURANCE_TYPE_EMPLOYEE then
  return fail('NOT_EMPLOYEE', 'only an employee-insured person records contributions')
end
if is_closed(a) then return fail('ACCOUNT_CLOSED', 'the account is closed') end
if is_stopped(a) then
  return fail('INSURANCE_STOPPED', 'a stopped insurance records no contributions (A9)')
end
local allocation = share(N(ARGV[3]), N(ARGV[8]), 10000)
if a.balance + allocation > MAX_BALANCE then
  return fail('INVALID_AMOUNT', 'the balance would exceed ' .. I(MAX_BALANCE) .. ' fen')
end
local back = false
for _, m in ipairs(redis.call('HKEYS', key(a, 11))) do
  if m > month then back = true break end
end
local entry_id = ''
if allocation > 0 then
  entry_id = append(a, ARGV[9], ENTRY_KIND_ALLOCATION, allocation, 'contribution:' .. month).entry_id
end
local c = {person_id = a.person_id, month = month, base_fen = ARGV[3], employee_fen = ARGV[4],
           employer_fen = ARGV[5], payer = ARGV[6], region_code = region,
           allocation_fen = I(allocation), allocation_entry_id = entry_id, back_payment = back,
           recorded_ms = I(now())}
redis.call('HSET', key(a, 11), month, cjson.encode(c))
save(a)
return finish(MARKER, FP, c)
