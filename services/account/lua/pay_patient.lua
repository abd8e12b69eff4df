-- A payment in steps: may the patient have it (rules S5, A2), with his payer order as the
-- caller read it? Reads only. KEYS: 1 the patient's account, 2 unused marker.
-- ARGV: 2 entry kind, 3 '1' = quote only, 4 the payer order's version ('' = none), 5 premium year.
-- Answers {at_ms = the time of this check} or a refusal, or the order as it is now
-- ({stale_order = ..., version = ...}). The payment is decided at that time, on the patient's
-- own slot: a suspension of the patient written after it does not stop it (as on one Redis, a
-- change that returned before the payment began stops it, one that comes after does not).
local patient = load(1)
if patient and ARGV[4] ~= '' and N(ARGV[4]) ~= patient.payers_v then
  return cjson.encode({stale_order = redis.call('HGET', KEYS[1], 'payers') or '[]',
                       version = I(patient.payers_v)})
end
local refused = refuse_patient(patient, ARGV[2] == ENTRY_KIND_PREMIUM, ARGV[3] == '1',
                               KEYS[1] .. ':premium:' .. ARGV[5])
return refused or cjson.encode({at_ms = I(NOW)})
