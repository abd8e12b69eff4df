-- The rules of a payment (a settlement's shares or a premium: rules S2-S5, S8, S9, S11, S12, A2;
-- quota draws N3, N5), written once. pay.lua and cancel_payment.lua run these steps all in one script over a family's
-- accounts (one Redis); under Redis Cluster, where one script reaches one slot, stepwise.py runs
-- the same steps one slot at a time: the accounts read under their locks (lock_read.lua), the
-- plan made and journaled on the payment's slot (pay_plan.lua), each account's share written on
-- its own slot (pay_step.lua), the record finished (pay_done.lua). Only how the steps reach
-- Redis differs between the two.
--
-- A payment's record (`acct:pay:{<payment_id>}`) is final when it has no `phase`: PAID,
-- CANCELLED, or REVERSED (a tombstone). Under Redis Cluster it is first the journal of the plan
-- (`phase = 'paying'`), and a PAID record being cancelled carries the cancel's journal
-- (`cancelling`); an attempt the recovery loop gave up is listed in `void`, so that it can never
-- journal afterwards.

local function is_void(rec, attempt)
  for _, a in ipairs(rec.void or {}) do
    if a == attempt then return true end
  end
  return false
end

-- The answer for a payment whose record (at KEYS[k]) exists: it, or why it is refused; nil when
-- there is none (or only the mark of attempts given up, then returned second). `attempt`: the
-- caller's, refused if it was given up.
local function made_before(k, attempt)
  local raw = redis.call('GET', KEYS[k])
  if not raw then return nil end
  local rec = cjson.decode(raw)
  if rec.phase == 'void' then
    if attempt and is_void(rec, attempt) then
      return fail('LOCK_TIMEOUT', 'this attempt took too long and was given up; retry')
    end
    return nil, rec
  end
  if rec.state == PAYMENT_STATE_REVERSED then
    return fail('SETTLEMENT_REVERSED', 'this payment was reversed before it arrived')
  end
  if rec.fp ~= FP then
    return fail('IDEMPOTENCY_CONFLICT', 'the key was used before with other content')
  end
  return raw
end

-- CancelPayment's answer from the record at KEYS[k] alone (rule S9), if it has one: a refusal,
-- or the record when it was cancelled by this request (`request_id`) or this is a reversal;
-- else nil and the record, to be cancelled.
local function cancel_answer(k, request_id, reversal)
  local raw = redis.call('GET', KEYS[k])
  local rec = raw and cjson.decode(raw)
  if not rec or rec.phase or rec.state == PAYMENT_STATE_REVERSED
     or rec.kind ~= ENTRY_KIND_SETTLEMENT then
    return fail('SETTLEMENT_NOT_FOUND', 'no such settlement')
  end
  if rec.state == PAYMENT_STATE_CANCELLED then
    if rec.cancel_request_id == request_id or reversal then return raw end
    return fail('ALREADY_CANCELLED', 'this settlement was cancelled before')
  end
  return nil, rec
end

-- Why the patient may not have this payment made (rules S5, A2, A9, N5), or nil. `premium`: a
-- premium's mark (its year, or 'ltc:' and the year of a long-term-care premium, which any insured
-- person may have paid); `year_paid`: that mark is set (paid).
local function refuse_patient(patient, premium, quote, year_paid)
  if premium then
    if not patient then return fail('ACCOUNT_NOT_FOUND', 'the beneficiary is not registered') end
    if string.sub(premium, 1, 4) ~= 'ltc:' and patient.type ~= INSURANCE_TYPE_RESIDENT then
      return fail('BENEFICIARY_NOT_RESIDENT', 'only resident premiums are paid from accounts')
    end
    if is_closed(patient) then
      return fail('ACCOUNT_CLOSED', "the beneficiary's account is closed or moved out")
    end
    if patient.status == ACCOUNT_STATUS_SUSPENDED then
      return fail('ACCOUNT_SUSPENDED', "the beneficiary's account is suspended")
    end
    if is_stopped(patient) then
      return fail('INSURANCE_STOPPED', "the beneficiary's insurance is stopped")
    end
    if not quote and year_paid then
      return fail('PREMIUM_ALREADY_PAID', 'the premium of this year is paid')
    end
    return nil
  end
  if not patient then return fail('ACCOUNT_NOT_FOUND', 'the patient is not insured here') end
  if patient.status == ACCOUNT_STATUS_SUSPENDED then
    return fail('ACCOUNT_SUSPENDED', 'online settlement is suspended for the patient (S5)')
  end
  if is_closed(patient) then return fail('ACCOUNT_CLOSED', "the patient's account is closed") end
  if is_stopped(patient) then
    return fail('INSURANCE_STOPPED', "the patient's insurance is stopped")
  end
  return nil
end

-- Why account `a` may not pay for the patient on the date (rule S4), or nil: without a binding
-- only for himself; with one, only under its grant (`grant`: as the binder's account keeps it),
-- active and valid on the date, and only while he is employee-insured (a resident is never a
-- binder, A9).
local function why_not_source(a, grant, binding_id, patient_id, on_date)
  if not a then return 'ACCOUNT_NOT_FOUND', 'a payer has no account' end
  if binding_id ~= '' or a.person_id ~= patient_id then
    local g = binding_id ~= '' and grant and grant_of(a, binding_id, grant)
    if not (g and g.active and g.beneficiary_id == patient_id
            and g.start_date <= on_date and (g.end_date == '' or on_date <= g.end_date)) then
      return 'NOT_BOUND', 'the payer has no binding to the patient valid on the date'
    end
    if a.type ~= INSURANCE_TYPE_EMPLOYEE then
      return 'NOT_BOUND', 'the payer is no longer employee-insured (B1)'
    end
  end
  return why_not_pay(a)
end

-- Why the aid quota `s.quota_id` of account `a` (its record as kept: `s.quota`) may not pay for
-- the patient (N3, S4), or nil: it must be his, ACTIVE, and its funder able to pay.
local function why_not_quota(s, patient_id)
  if not s.a then return 'ACCOUNT_NOT_FOUND', 'a funder has no account' end
  local q = quota_of(s.quota or nil)
  if not q or q.relative ~= patient_id then
    return 'QUOTA_NOT_FOUND', 'no such aid quota for the patient'
  end
  if q.status ~= QUOTA_STATUS_ACTIVE then return 'QUOTA_ENDED', 'the aid quota is not active' end
  return why_not_pay(s.a)
end

-- What a source may give at most: an account its available balance; a quota what remains of it
-- (the money is set aside for the patient, N3). Returns the amount, or nil and why not.
local function source_room(s, patient_id, on_date)
  if s.quota_id ~= '' then
    local reason, message = why_not_quota(s, patient_id)
    if reason then return nil, reason, message end
    local q = quota_of(s.quota)
    return q.granted - q.used
  end
  local reason, message = why_not_source(s.a, s.grant, s.binding_id, patient_id, on_date)
  if reason then return nil, reason, message end
  return math.max(0, available(s.a))
end

-- What a source gives to a payment with `left` fen still to pay: SETTLEMENT, up to what it may
-- give (0 if it may not pay, S4); PREMIUM, all of it or a refusal (A2, N5).
-- Returns the amount, or nil and the refusal.
local function source_take(s, patient_id, on_date, premium, left)
  local room, reason, message = source_room(s, patient_id, on_date)
  if premium then
    if not room then return nil, fail(reason, message) end
    if room < left then
      return nil, fail('INSUFFICIENT_FUNDS', 'one source pays the whole premium (A2)')
    end
  end
  if not room or s.a.balance <= 0 then return 0 end
  return math.min(left, room)
end

-- The waterfall (S2, N3): each source, in order, gives what it may (S4) while anything is left;
-- the rest is cash. `sources`: {a = the account or nil, person_id, binding_id ('' = his own, or
-- a quota's), grant, quota_id ('' = none), quota (its record as kept)}. A person may be a quota
-- and a payer both: listed twice is a quota listed twice, or an account twice.
-- Returns the shares that pay ({a, person_id, own, amount, quota_id}), or nil and the refusal.
local function plan_shares(patient, sources, premium, amount, on_date)
  if premium and #sources > 1 then
    -- N5: the payer's quotas for the beneficiary, then his own way (A2): the first quota whose
    -- remaining covers the premium pays it (its funder's status then decides), else the last.
    local chosen = sources[#sources]
    for _, s in ipairs(sources) do
      local q = s.quota_id ~= '' and quota_of(s.quota or nil)
      if q and q.relative == patient.person_id and q.status == QUOTA_STATUS_ACTIVE
         and q.granted - q.used >= amount then
        chosen = s
        break
      end
    end
    sources = {chosen}
  end
  local listed, left, shares = {}, amount, {}
  for _, s in ipairs(sources) do
    local name = s.quota_id ~= '' and 'q ' .. s.quota_id or s.person_id
    if listed[name] then return nil, fail('INVALID_ARGUMENT', 'a source is listed twice') end
    listed[name] = true
    local take, refusal = source_take(s, patient.person_id, on_date, premium, left)
    if not take then return nil, refusal end
    if take > 0 then
      table.insert(shares, {a = s.a, person_id = s.person_id, amount = take,
                            own = s.binding_id == '' and s.quota_id == '',
                            quota_id = s.quota_id})
      left = left - take
    end
  end
  if premium and #shares == 0 then return nil, fail('NOT_BOUND', 'no account to pay the premium from') end
  return shares
end

-- A new record of the payment, with no shares yet.
local function record_of(payment_id, kind, patient_id, details, at_ms)
  return {payment_id = payment_id, kind = kind, patient_id = patient_id, details = details,
          shares = {}, at_ms = at_ms, cancelled_ms = '0', cancel_reason = '',
          cancel_request_id = ''}
end

-- A share as the record keeps it; a quota's names the quota and its funder's province then (N6).
local function share_of(s, entry_id, balance_after)
  local kept = {person_id = s.person_id, own = s.own, amount = I(s.amount), entry_id = entry_id,
                balance_after = balance_after}
  if s.quota_id ~= '' then
    kept.quota_id, kept.province = s.quota_id, string.sub(s.a.region, 1, 2)
  end
  return kept
end

-- Share `n` debited (S2, A2) as the entry `<payment>-<n>`, with the payment's time; and the
-- payer's index of the payments he paid family aid in (S13). `indexed`: the entry index names
-- the entry already (a step claims it first, so that it is written once). A quota's share is
-- drawn from it: its `used` up and the account's reservation down with the debit (N3).
local function debit_share(a, payment_id, n, kind, amount, at_ms, own, indexed, quota_id)
  local e = append(a, payment_id .. '-' .. n, kind, -amount, payment_id, at_ms, indexed)
  if kind ~= ENTRY_KIND_PREMIUM and not own then redis.call('ZADD', key(a, 10), at_ms, payment_id) end
  if quota_id and quota_id ~= '' then
    local q = read_quota(a, quota_id)
    q.used = q.used + amount
    keep_quota(a, quota_id, q)
    reserve(a, -amount)
  end
  return e
end

-- Whether share `s` (a planned one, or one journaled) may still be debited from account `a` as
-- it is now: its quota ACTIVE with that much left, or that much available.
local function still_payable(a, s)
  local amount = N(s.amount)
  if s.quota_id and s.quota_id ~= '' then
    local q = read_quota(a, s.quota_id)
    return q ~= nil and q.status == QUOTA_STATUS_ACTIVE and q.granted - q.used >= amount
  end
  return available(a) >= amount
end

-- What the patient's account keeps of a payment: a premium's year marked paid by it (A2), or
-- a settlement in his consumption record (S13). `patient_key`: his account's key.
local function mark_patient(patient_key, premium, payment_id, year, at_ms)
  if premium then
    redis.call('SET', patient_key .. ':premium:' .. year, payment_id)
  else
    redis.call('ZADD', patient_key .. PARTS[9], at_ms, payment_id)
  end
end

-- Share `i` of a cancelled payment credited back to its payer once (S9), as `<payment>-r<i>`
-- (and `-p<i>` when a closed account pays it on), with the refund noted against the debit. A
-- quota's share goes back to its quota while it is ACTIVE (`q = 1` in the note), else to the
-- funder's available balance.
local function refund_share(a, payment_id, i, s, indexed)
  local amount = N(s.amount)
  local e = credit_back(a, payment_id .. '-r' .. i, amount, 'cancel ' .. payment_id,
                        payment_id .. '-p' .. i, indexed)
  local note = {refund_id = payment_id .. ':refund:' .. i, entry_id = e.entry_id}
  local q = s.quota_id and read_quota(a, s.quota_id)
  if q and q.status == QUOTA_STATUS_ACTIVE then
    q.used = q.used - amount
    keep_quota(a, s.quota_id, q)
    reserve(a, amount)
    note.q = 1
  end
  redis.call('HSET', key(a, 5), s.entry_id, cjson.encode(note))
  return e
end

-- The record CANCELLED (S9) by the cancel `c` = {reason, request_id}.
local function cancelled(rec, c)
  rec.state, rec.cancelled_ms = PAYMENT_STATE_CANCELLED, I(now())
  rec.cancel_reason, rec.cancel_request_id = c.reason, c.request_id
  rec.cancelling = nil
  return rec
end

-- The lists a settlement is kept in besides its record (N6, N7): its institution's day (`+id`
-- when settled, `-id` when cancelled or reversed, scored by that time) and, when it has a quota
-- share whose funder's province is not the institution's (`cross`, set when it is planned), the
-- month's clearing list the same way. Each is written in the step that settles or cancels, in
-- the Beijing day (and month) of that step's own clock, so once a day is over nothing is added
-- to its lists (pay.lua, cancel_payment.lua; stepwise.py under Redis Cluster).
local DAY_MS, BEIJING_MS = 86400000, 8 * 3600 * 1000

local function beijing_day(ms) return math.floor((N(ms) + BEIJING_MS) / DAY_MS) end

local function crosses(rec)
  local province = string.sub(rec.inst or '', 2, 3)
  for _, s in ipairs(rec.shares) do
    if s.quota_id and s.province ~= province then return true end
  end
  return false
end

-- Why the lists given for Beijing day `day` are not today's by the script's clock (the caller
-- computed them a moment before midnight): nil when they are.
local function refuse_day(day)
  if day ~= '' and beijing_day(now()) ~= N(day) then
    return cjson.encode({stale_day = true, day = I(beijing_day(now()))})
  end
  return nil
end

local function list_settlement(day_key, month_key, rec, sign, at_ms)
  redis.call('ZADD', day_key, at_ms, sign .. rec.payment_id)
  if rec.cross then redis.call('ZADD', month_key, at_ms, sign .. rec.payment_id) end
end
