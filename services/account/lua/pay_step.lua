-- A payment in steps: what one locked account does for it (stepwise.py), written once: its share
-- debited (if the plan gives it one), the patient's marks (if it is the patient's account), its
-- lock released. Run by whoever finishes the payment, as often as it is run.
-- KEYS: 1 the account. ARGV: 2 payment_id, 3 the share's number (0 = no share here), 4 entry
-- kind, 5 amount, 6 the payment's time (ms), 7 the fencing token the plan was made under,
-- 8 '1' = the patient's own account, 9 the patient's mark ('' = not the patient's account, 'S' a
-- settlement, else the premium year).
-- The share is debited only while the plan's lock is still the account's lock: a holder that
-- lost it was overtaken by one that first ran this step for it (Stepwise.resolve), so the
-- debit is found written; else LOCK_TIMEOUT. Returns the share's entry, or {} for no share.
local payment_id, n, kind, amount, at_ms, fence = ARGV[2], ARGV[3], ARGV[4], N(ARGV[5]),
                                                   ARGV[6], ARGV[7]
local a = load(1)
if not a then return fail('INTERNAL', 'a locked account is gone') end
local mine = a.lock ~= nil and a.fence == fence
local entry_id = payment_id .. '-' .. n
local e, wrote = nil, false
if n ~= '0' then
  if mine and available(a) >= amount
     and redis.call('HSETNX', key(a, 2), entry_id, I(a.seq + 1)) == 1 then
    e, wrote = debit_share(a, payment_id, n, kind, amount, at_ms, ARGV[8] == '1', true), true
  else
    local found, broken = entry_by_id(a, entry_id)
    if broken then return broken end
    if not found then
      if not mine then return fail('LOCK_TIMEOUT', 'the lock of this share was taken over') end
      return fail('INTERNAL', 'a planned share is more than its account holds')
    end
    e = found
  end
end
if mine then a.lock_raw = '' end
if wrote then save(a) elseif mine then redis.call('HSET', KEYS[1], 'lock', '') end
if ARGV[9] ~= '' then mark_patient(KEYS[1], ARGV[9] ~= 'S', payment_id, ARGV[9], at_ms) end
return cjson.encode(e or {})
