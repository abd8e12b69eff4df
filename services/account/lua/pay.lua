-- PayFromAccounts: a whole payment, made and recorded in one step (rules S2-S5, S8, S11, S12;
-- A2 for premiums). Every status, family-aid grant and balance is read and every share debited
-- in this one script, and the payment's record written with them, so nothing can change between
-- the decision and the debit and nothing is ever half done: on one Redis the script is the
-- family's lock and the payment's journal.
-- KEYS: 1 the payment's record, 2 the patient's account, then the account of each source, in
--       priority order.
-- ARGV: 1 fingerprint, 2 payment_id, 3 entry kind (SETTLEMENT or PREMIUM), 4 amount, 5 on_date,
--       6 '1' = quote only, 7 the version of the patient's payer order the sources were taken
--       from ('' = none), 8 details kept with the record, 9 premium year; then person_id and
--       binding_id of each source.
-- SETTLEMENT: each source that may pay (S4) pays up to its available balance, in order; the rest
-- is cash. PREMIUM: the one source pays all, once per beneficiary and year, or nothing.
-- When the payer order has changed since, nothing is written and the answer is the order as it
-- is now ({stale_order = ..., version = ...}), for the caller to take the sources from again.
local RECORD = KEYS[1]
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
local year_key = KEYS[2] .. ':premium:' .. ARGV[9]
local refused = refuse_patient(patient, premium, quote, year_key)
if refused then return refused end

local accounts = {[patient.person_id] = patient}  -- the patient paying his own bill is one account
local listed, left, shares = {}, amount, {}
for k = 1, #KEYS - 2 do
  local pid, binding_id = ARGV[8 + 2 * k], ARGV[9 + 2 * k]
  if listed[pid] then return fail('INVALID_ARGUMENT', 'a source is listed twice') end
  listed[pid] = true
  if accounts[pid] == nil then accounts[pid] = load(2 + k) or false end
  local take, refusal = source_take(accounts[pid] or nil, binding_id, patient.person_id, on_date,
                                    premium, left)
  if not take then return refusal end
  if take > 0 then
    table.insert(shares, {a = accounts[pid], person_id = pid, own = binding_id == '', amount = take})
    left = left - take
  end
end
if premium and #shares == 0 then return fail('NOT_BOUND', 'no account to pay the premium from') end

local rec = {payment_id = payment_id, kind = kind, patient_id = patient.person_id,
             details = ARGV[8], shares = {}, at_ms = I(NOW), cancelled_ms = '0',
             cancel_reason = '', cancel_request_id = ''}
if quote then
  rec.state = PAYMENT_STATE_QUOTED
  for _, s in ipairs(shares) do
    table.insert(rec.shares, {person_id = s.person_id, own = s.own, amount = I(s.amount),
                              entry_id = '', balance_after = I(s.a.balance - s.amount)})
  end
  return cjson.encode(rec)
end
for i, s in ipairs(shares) do
  expire_due(s.a)
  local e = append(s.a, payment_id .. '-' .. i, kind, -s.amount, payment_id)
  save(s.a)
  table.insert(rec.shares, {person_id = s.person_id, own = s.own, amount = I(s.amount),
                            entry_id = e.entry_id, balance_after = e.balance_after})
  if not premium and not s.own then redis.call('ZADD', key(s.a, 10), NOW, payment_id) end
end
if premium then
  redis.call('SET', year_key, payment_id)
else
  redis.call('ZADD', KEYS[2] .. PARTS[9], NOW, payment_id)
end
rec.state, rec.fp = PAYMENT_STATE_PAID, FP
local encoded = cjson.encode(rec)
redis.call('SET', RECORD, encoded)
return encoded
