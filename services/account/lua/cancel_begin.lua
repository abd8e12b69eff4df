-- CancelPayment in steps (Redis Cluster, stepwise.py), its first step: the cancel's journal,
-- kept in the PAID record (`cancelling`), so that a reader still sees it paid until the last
-- refund is written. KEYS: 1 the payment's record. ARGV: 2 reason, 3 the cancel's request id,
-- 4 '1' = a reversal, 5 the attempt's token.
-- Answers as cancel_answer does when the record decides; else the record with the cancel in
-- progress (a replica finishes it, then answers), or with the one journaled now.
local answer, rec = cancel_answer(1, ARGV[3], ARGV[4] == '1')
if answer then return answer end
if rec.cancelling then return cjson.encode(rec) end
if is_void(rec, ARGV[5]) then
  return fail('LOCK_TIMEOUT', 'this attempt took too long and was given up; retry')
end
rec.cancelling = {reason = ARGV[2], request_id = ARGV[3], attempt = ARGV[5]}
local encoded = cjson.encode(rec)
redis.call('SET', KEYS[1], encoded)
return encoded
