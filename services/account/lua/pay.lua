-- PayFromAccounts on one Redis: the whole payment, made and recorded in one step (rules S2-S5,
-- S8, S11, S12; A2 for premiums), with the steps of payment.lua. Every status, family-aid grant
-- and balance is read and every share debited in this one script, and the payment's record
-- written with them, so nothing can change between the decision and the debit and nothing is
-- ever half done: Redis runs one script at a time, so the script is the family's lock.
-- KEYS: 1 the payment's record, 2 the patient's account, then the account of each source, in
--       priority order.
-- ARGV: 1 fingerprint, 2 payment_id, 3 entry kind (SETTLEMENT or PREMIUM), 4 amount, 5 on_date,
--       6 '1' = quote only, 7 the version of the patient's payer order the sources were taken
--       from ('' = none), 8 details kept with the record, 9 premium year; then person_id and
--       binding_id of each source.
-- Returns the record (PAID, or QUOTED with nothing written); a refusal; or, when the payer
-- order has changed since, {stale_order = the order as it is now, version = ...} and nothing
-- is written, for the caller to take the sources from again.
local payment_id, kind, amount, on_date = ARGV[2], ARGV[3], N(ARGV[4]), ARGV[5]
local quote, premium = ARGV[6] == '1', ARGV[3] == ENTRY_KIND_PREMIUM

if not quote then
  local answer = made_before(1)
  if answer then return answer end
end

local patient = load(2)
if patient and ARGV[7] ~= '' and N(ARGV[7]) ~= patient.payers_v then
  return cjson.encode({stale_order = redis.call('HGET', KEYS[2], 'payers') or '[]',
                       version = I(patient.payers_v)})
end
local year_paid = premium and redis.call('EXISTS', KEYS[2] .. ':premium:' .. ARGV[9]) == 1
local refused = refuse_patient(patient, premium, quote, year_paid)
if refused then return refused end

local accounts = {[patient.person_id] = patient}  -- the patient paying his own bill is one account
local sources = {}
for k = 1, #KEYS - 2 do
  local pid, binding_id = ARGV[8 + 2 * k], ARGV[9 + 2 * k]
  if accounts[pid] == nil then accounts[pid] = load(2 + k) or false end
  local a = accounts[pid] or nil
  local grant = a and binding_id ~= '' and redis.call('HGET', key(a, 8), binding_id)
  table.insert(sources, {a = a, person_id = pid, binding_id = binding_id, grant = grant})
end
local shares, refusal = plan_shares(patient, sources, premium, amount, on_date)
if not shares then return refusal end

local at_ms = I(now())
local rec = record_of(payment_id, kind, patient.person_id, ARGV[8], at_ms)
if quote then
  rec.state = PAYMENT_STATE_QUOTED
  for _, s in ipairs(shares) do
    table.insert(rec.shares, share_of(s.person_id, s.own, s.amount, '', I(s.a.balance - s.amount)))
  end
  return cjson.encode(rec)
end
for i, s in ipairs(shares) do
  local e = debit_share(s.a, payment_id, i, kind, s.amount, at_ms, s.own)
  save(s.a)
  table.insert(rec.shares, share_of(s.person_id, s.own, s.amount, e.entry_id, e.balance_after))
end
mark_patient(KEYS[2], premium, payment_id, ARGV[9], at_ms)
rec.state, rec.fp = PAYMENT_STATE_PAID, FP
local encoded = cjson.encode(rec)
redis.call('SET', KEYS[1], encoded)
return encoded
