-- CancelPayment in steps (Redis Cluster, stepwise.py), its first step: the cancel's journal.
-- KEYS: 1 the payment's record, 2 its cancel journal (same slot). ARGV: 2 reason, 3 the cancel's
-- request id, 4 '1' = a reversal.
-- Answers as cancel_answer does when the record decides; else the journal of the cancel in
-- progress (a replica finishes it, then answers), or the one written now.
local answer = cancel_answer(1, ARGV[3], ARGV[4] == '1')
if answer then return answer end
local raw = redis.call('GET', KEYS[2])
if raw then return raw end
local journal = cjson.encode({cancelling = true, reason = ARGV[2], request_id = ARGV[3]})
redis.call('SET', KEYS[2], journal, 'EX', RECORD_TTL_S)
return journal
