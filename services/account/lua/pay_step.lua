-- A payment in steps: what one locked account does for it (stepwise.py), written once: its
-- shares debited (one, or two for a funder who pays from a quota and as a payer), the patient's
-- marks (if it is the patient's account), its lock released. Run by whoever finishes the
-- payment, as often as it is run.
-- KEYS: 1 the account. ARGV: 2 payment_id, 3 its shares here (JSON list of {n = the share's
-- number, amount, own, quota_id}; empty: none), 4 entry kind, 6 the payment's time (ms), 7 the
-- fencing token the plan was made under, 9 the patient's mark ('' = not the patient's account,
-- 'S' a settlement, else the premium's mark).
-- A share is debited only while the plan's lock is still the account's lock: a holder that
-- lost it was overtaken by one that first ran this step for it (Stepwise.resolve), so the
-- debit is found written; else LOCK_TIMEOUT. Every share is checked before the first is
-- written. Returns {n: the share's entry}.
local payment_id, kind, at_ms, fence = ARGV[2], ARGV[4], ARGV[6], ARGV[7]
local shares = cjson.decode(ARGV[3])
local a = load(1)
if not a then return fail('INTERNAL', 'a locked account is gone') end
local mine = a.lock ~= nil and a.fence == fence
local out, due = {}, {}
for _, s in ipairs(shares) do
  local entry_id = payment_id .. '-' .. s.n
  local found, broken = entry_by_id(a, entry_id)
  if broken then return broken end
  if found then
    out[tostring(s.n)] = found
  elseif not mine then
    return fail('LOCK_TIMEOUT', 'the lock of this share was taken over')
  else
    table.insert(due, s)
  end
end
for _, s in ipairs(due) do  -- a quota's draw leaves the available balance as it was
  if not still_payable(a, s) then
    return fail('INTERNAL', 'a planned share is more than its account holds')
  end
end
for _, s in ipairs(due) do
  redis.call('HSET', key(a, 2), payment_id .. '-' .. s.n, I(a.seq + 1))
  out[tostring(s.n)] = debit_share(a, payment_id, s.n, kind, N(s.amount), at_ms, s.own, true,
                                   s.quota_id)
end
if mine then a.lock_raw = '' end
if #due > 0 then save(a) elseif mine then redis.call('HSET', KEYS[1], 'lock', '') end
if ARGV[9] ~= '' then mark_patient(KEYS[1], ARGV[9] ~= 'S', payment_id, ARGV[9], at_ms) end
return cjson.encode(out)
