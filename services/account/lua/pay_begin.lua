-- The first step of a payment made in steps (Redis Cluster, where one script cannot reach every
-- account of a family: stepwise.py). KEYS: 1 the payment's record, 2 its journal (same slot).
-- ARGV: 2 the journal to write ('' = only look).
-- Answers the record if the payment was made (or why it is refused: made_before); else the
-- journal of a payment in progress under this key, or the one written now; else {} when only
-- looking. The journal holds the payment's inputs, so any replica can finish it.
local answer = made_before(1)
if answer then return answer end
local raw = redis.call('GET', KEYS[2])
if raw then
  if cjson.decode(raw).fp ~= FP then
    return fail('IDEMPOTENCY_CONFLICT', 'the key was used before with other content')
  end
  return raw
end
if ARGV[2] == '' then return '{}' end
local journal = cjson.decode(ARGV[2])
-- The payment's time, on its record and in every index that lists it: when the patient was
-- checked (pay_patient), else now.
if not journal.at_ms or journal.at_ms == '' then journal.at_ms = I(NOW) end
local encoded = cjson.encode(journal)
redis.call('SET', KEYS[2], encoded, 'EX', RECORD_TTL_S)
return encoded
