-- PayFromAccounts: a whole payment in one step (rules S2-S5, S11, S12; A2 for premiums). Every
-- status, family-aid grant and balance is read and every share debited in this one script, so
-- nothing can change between the decision and the debit: on one Redis the script is the family's
-- lock.
-- KEYS: 1 the payment's record (on the patient's account), 2 the patient's account, then the
--       account of each source, in priority order.
-- ARGV: 1 fingerprint, 2 payment_id, 3 entry kind (SETTLEMENT or PREMIUM), 4 amount, 5 on_date,
--       6 not-after ms, 7 '1' = quote only, 8 the version of the patient's payer order the
--       sources were taken from ('' = none); then person_id and binding_id of each source.
-- When the order has changed since, nothing is written and the answer is the order as it is now
-- ({stale_order = ..., version = ...}), for the caller to take the sources from it again.
-- SETTLEMENT: each source that may pay (S4) pays up to its available balance, in order; the rest
-- is cash. PREMIUM: the one source pays all or the payment is refused.
local RECORD = KEYS[1]
local payment_id, kind, amount, on_date = ARGV[2], ARGV[3], N(ARGV[4]), ARGV[5]
local quote, premium = ARGV[7] == '1', ARGV[3] == ENTRY_KIND_PREMIUM

if not quote then
  local raw = redis.call('GET', RECORD)
  if raw then
    local rec = cjson.decode(raw)
    if rec.state == PAYMENT_STATE_ABORTED then
      return fail('SETTLEMENT_ABORTED', 'this payment was aborted')
    end
    if rec.fp ~= FP then
      return fail('IDEMPOTENCY_CONFLICT', 'payment_id was used before with other content')
    end
    return raw
  end
  if NOW > N(ARGV[6]) then return fail('SETTLEMENT_ABORTED', 'the payment came after its time') end
end

local patient = load(2)
if patient and ARGV[8] ~= '' and N(ARGV[8]) ~= patient.payers_v then
  return cjson.encode({stale_order = redis.call('HGET', KEYS[2], 'payers') or '[]',
                       version = I(patient.payers_v)})
end
if premium then
  if not patient then return fail('ACCOUNT_NOT_FOUND', 'the beneficiary is not registered') end
  if patient.type ~= INSURANCE_TYPE_RESIDENT then
    return fail('BENEFICIARY_NOT_RESIDENT', 'only resident premiums are paid from accounts')
  end
else
  if not patient then return fail('ACCOUNT_NOT_FOUND', 'the patient is not insured here') end
  if patient.status == ACCOUNT_STATUS_SUSPENDED then
    return fail('ACCOUNT_SUSPENDED', 'online settlement is suspended for the patient (S5)')
  end
  if is_closed(patient) then return fail('ACCOUNT_CLOSED', "the patient's account is closed") end
end

-- Why a source may not pay for the patient on the date (rule S4), or nil.
local function why_not(a, binding_id)
  if not a then return 'ACCOUNT_NOT_FOUND', 'a payer has no account' end
  if binding_id ~= '' or a.person_id ~= patient.person_id then
    local raw = binding_id ~= '' and redis.call('HGET', key(a, 8), binding_id)
    local g = raw and cjson.decode(raw)
    if not (g and g.active and g.beneficiary_id == patient.person_id
            and g.start_date <= on_date and (g.end_date == '' or on_date <= g.end_date)) then
      return 'NOT_BOUND', 'the payer has no binding to the patient valid on the date'
    end
  end
  return why_not_pay(a)
end

local accounts = {[patient.person_id] = patient}  -- the patient paying his own bill is one account
local listed, left, shares = {}, amount, {}
for k = 1, (#KEYS - 1) / ACCOUNT_KEYS - 1 do
  local pid, binding_id = ARGV[7 + 2 * k], ARGV[8 + 2 * k]
  if listed[pid] then return fail('INVALID_ARGUMENT', 'a source is listed twice') end
  listed[pid] = true
  if accounts[pid] == nil then accounts[pid] = load(2 + ACCOUNT_KEYS * k) or false end
  local a = accounts[pid] or nil
  local reason, message = why_not(a, binding_id)
  if premium then
    if reason then return fail(reason, message) end
    if available(a) < amount then
      return fail('INSUFFICIENT_FUNDS', 'one account pays the whole premium (A2)')
    end
  end
  local take = (reason or a.balance <= 0) and 0 or math.min(left, math.max(0, available(a)))
  if take > 0 then
    table.insert(shares, {a = a, person_id = pid, own = binding_id == '', amount = take})
    left = left - take
  end
end
if premium and #shares == 0 then return fail('NOT_BOUND', 'no account to pay the premium from') end

local out = {}
if quote then
  for _, s in ipairs(shares) do
    table.insert(out, {person_id = s.person_id, own = s.own, amount = I(s.amount),
                       entry_id = '', balance_after = I(s.a.balance - s.amount)})
  end
  return cjson.encode({state = PAYMENT_STATE_QUOTED, payment_id = payment_id, shares = out,
                       at_ms = I(NOW)})
end
for i, s in ipairs(shares) do
  expire_due(s.a)
  local e = append(s.a, payment_id .. '-' .. i, kind, -s.amount, payment_id)
  save(s.a)
  table.insert(out, {person_id = s.person_id, own = s.own, amount = I(s.amount),
                     entry_id = e.entry_id, balance_after = e.balance_after})
end
local rec = cjson.encode({state = PAYMENT_STATE_PAID, payment_id = payment_id, fp = FP,
                          shares = out, at_ms = I(NOW)})
redis.call('SET', RECORD, rec, 'EX', RECORD_TTL_S)
return rec
