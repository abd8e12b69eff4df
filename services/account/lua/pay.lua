-- PayFromAccounts on one Redis: the whole payment, made and recorded in one step (rules S2-S5,
-- S8, S11, S12; A2, N5 for premiums; N3 for aid quotas), with the steps of payment.lua. Every
-- status, family-aid grant, quota and balance is read and every share debited in this one
-- script, and the payment's record written with them, so nothing can change between the
-- decision and the debit and nothing is ever half done: Redis runs one script at a time, so the
-- script is the family's lock.
-- KEYS: 1 the payment's record, 2 the institution's day list, 3 the month's clearing list (a
--       settlement's; else any key of the record's slot), 4 the patient's account, then the
--       account of each source, in priority order.
-- ARGV: 1 fingerprint, 2 payment_id, 3 entry kind (SETTLEMENT or PREMIUM), 4 amount, 5 on_date,
--       6 '1' = quote only, 7 the version of the patient's payer order the sources were taken
--       from ('' = none), 8 details kept with the record, 9 a premium's mark (its year, or
--       'ltc:' and its year), 10 a settlement's institution, 11 the Beijing day (number) of
--       KEYS 3 and 4 ('' = none); then person_id, binding_id and quota_id of each source.
-- Returns the record (PAID, or QUOTED with nothing written); a refusal; when the payer order has
-- changed since, {stale_order = the payers as they are now, quotas, version}; or, when the day
-- has turned since the caller named its lists, {stale_day}: nothing is written then.
local payment_id, kind, amount, on_date = ARGV[2], ARGV[3], N(ARGV[4]), ARGV[5]
local quote, premium = ARGV[6] == '1', ARGV[3] == ENTRY_KIND_PREMIUM
local PATIENT, SOURCES = 4, 4

if not quote then
  local answer = made_before(1)
  if answer then return answer end
  local stale = refuse_day(ARGV[11])
  if stale then return stale end
end

local patient = load(PATIENT)
if patient and ARGV[7] ~= '' and N(ARGV[7]) ~= patient.payers_v then
  return cjson.encode({stale_order = patient.payers, quotas = patient.quotas,
                       version = I(patient.payers_v)})
end
local year_paid = premium and redis.call('EXISTS', KEYS[PATIENT] .. ':premium:' .. ARGV[9]) == 1
local refused = refuse_patient(patient, premium and ARGV[9], quote, year_paid)
if refused then return refused end

local accounts = {[patient.person_id] = patient}  -- the patient paying his own bill is one account
local sources = {}
for k = 1, #KEYS - SOURCES do
  local pid, binding_id, quota_id = ARGV[9 + 3 * k], ARGV[10 + 3 * k], ARGV[11 + 3 * k]
  if accounts[pid] == nil then accounts[pid] = load(SOURCES + k) or false end
  local a = accounts[pid] or nil
  local grant = a and binding_id ~= '' and redis.call('HGET', key(a, 8), binding_id)
  local quota = a and quota_id ~= '' and redis.call('HGET', key(a, 12), quota_id)
  table.insert(sources, {a = a, person_id = pid, binding_id = binding_id, grant = grant,
                         quota_id = quota_id, quota = quota})
end
local shares, refusal = plan_shares(patient, sources, premium, amount, on_date)
if not shares then return refusal end

local at_ms = I(now())
local rec = record_of(payment_id, kind, patient.person_id, ARGV[8], at_ms)
if ARGV[10] ~= '' then rec.inst = ARGV[10] end
if quote then
  rec.state = PAYMENT_STATE_QUOTED
  local after = {}  -- each account's balance after its shares so far (a funder may have two)
  for _, s in ipairs(shares) do
    after[s.person_id] = (after[s.person_id] or s.a.balance) - s.amount
    table.insert(rec.shares, share_of(s, '', I(after[s.person_id])))
  end
  return cjson.encode(rec)
end
for i, s in ipairs(shares) do
  local e = debit_share(s.a, payment_id, i, kind, s.amount, at_ms, s.own, false, s.quota_id)
  save(s.a)
  table.insert(rec.shares, share_of(s, e.entry_id, e.balance_after))
end
mark_patient(KEYS[PATIENT], premium, payment_id, ARGV[9], at_ms)
rec.state, rec.fp = PAYMENT_STATE_PAID, FP
if not premium then
  rec.cross = crosses(rec) or nil
  list_settlement(KEYS[2], KEYS[3], rec, '+', at_ms)
end
local encoded = cjson.encode(rec)
redis.call('SET', KEYS[1], encoded)
return encoded
