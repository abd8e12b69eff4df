-- A payment in steps (Redis Cluster, stepwise.py), its plan: the accounts as they were read
-- under their locks (lock_read.lua) are planned with payment.lua's rules, and the plan
-- journaled in the payment's record (`phase = 'paying'`), with the fencing token of every lock
-- it was made under; from here on any runner (the caller, its retry, the recovery loop, another
-- replica, a resolver) writes each share once under that token (pay_step.lua).
-- KEYS: 1 the payment's record.
-- ARGV: 1 fingerprint, 2 payment_id, 3 entry kind, 4 amount, 5 on_date, 6 '1' = quote only,
--       7 the payer order's version ('' = none), 8 details, 9 a premium's mark (pay.lua), 10 the
--       attempt's token, 11 the payment's time (ms), 12 what was read: {patient = {fields,
--       year_paid}, sources = [{person_id, binding_id, quota_id, fields, grant, quota}],
--       locks = {person_id: fence}}, 13 a settlement's institution.
-- Returns what pay.lua returns (the record, a refusal, a stale order); a record already there
-- (made, or being made: its journal) before anything else, or LOCK_TIMEOUT for an attempt the
-- recovery loop gave up; {stale_day} when the Beijing day has turned since the payment's time
-- (its day's lists may be read as final from then on: the attempt is made again).
local payment_id, kind, amount, on_date = ARGV[2], ARGV[3], N(ARGV[4]), ARGV[5]
local quote, premium = ARGV[6] == '1', ARGV[3] == ENTRY_KIND_PREMIUM

if not quote then
  local answer = made_before(1, ARGV[10])
  if answer then return answer end
  local stale = refuse_day(I(beijing_day(ARGV[11])))
  if stale then return stale end
end

local read = cjson.decode(ARGV[12])
local patient = read.patient.fields and from_fields(0, read.patient.fields)
if patient and ARGV[7] ~= '' and N(ARGV[7]) ~= patient.payers_v then
  return cjson.encode({stale_order = patient.payers, quotas = patient.quotas,
                       version = I(patient.payers_v)})
end
local refused = refuse_patient(patient, premium and ARGV[9], quote, read.patient.year_paid)
if refused then return refused end

local accounts = {[patient.person_id] = patient}
local sources = {}
for _, s in ipairs(read.sources) do
  if accounts[s.person_id] == nil then
    accounts[s.person_id] = s.fields and from_fields(0, s.fields) or false
  end
  table.insert(sources, {a = accounts[s.person_id] or nil, person_id = s.person_id,
                         binding_id = s.binding_id, grant = s.grant,
                         quota_id = s.quota_id or '', quota = s.quota})
end
local shares, refusal = plan_shares(patient, sources, premium, amount, on_date)
if not shares then return refusal end

local rec = record_of(payment_id, kind, patient.person_id, ARGV[8], ARGV[11])
if ARGV[13] ~= '' then rec.inst = ARGV[13] end
local after = {}  -- each account's balance after its shares so far (a funder may have two)
for i, s in ipairs(shares) do
  local entry_id = quote and '' or payment_id .. '-' .. i
  after[s.person_id] = (after[s.person_id] or s.a.balance) - s.amount
  table.insert(rec.shares, share_of(s, entry_id, I(after[s.person_id])))
end
if quote then
  rec.state = PAYMENT_STATE_QUOTED
  return cjson.encode(rec)
end
if not premium then rec.cross = crosses(rec) or nil end
rec.phase, rec.fp, rec.attempt, rec.year, rec.locks = 'paying', FP, ARGV[10], ARGV[9], read.locks
local encoded = cjson.encode(rec)
redis.call('SET', KEYS[1], encoded)
return encoded
