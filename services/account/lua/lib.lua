-- The shared head of every account script (store.py prepends it, after the enum constants).
--
-- An account is one key of KEYS, its hash (`acct:{<person_id>}`); its other keys are that name
-- and a suffix (PARTS, as store.account_keys lists them): 1 ledger, 2 entry index, 3 holds,
-- 4 hold expiry, 5 refunds, 6 policies, 7 outbox, 8 grants, 9 the payments for the person as a
-- patient, 10 those he paid family aid in, 11 his contribution months. They share the hash tag, so they live in the
-- account's slot, also under Redis Cluster. `load(i)` reads the account of KEYS[i]. A script reads and
-- checks first and writes only after its last refusal, through `expire_due`, `append`, `emit`,
-- `save` and `finish`: Redis never rolls a script back, so a refusal must come before the first
-- write. Integers travel as strings (`I`): cjson and Redis print big or negative-zero doubles in
-- forms HINCRBY and the parsers refuse.
local ACCOUNT_KEYS = 1
local PARTS = {':ledger', ':eidx', ':holds', ':hexp', ':refunds', ':policies', ':outbox',
               ':grants', ':paid-for', ':paid-by', ':contrib'}
local RECORD_TTL_S = 7 * 24 * 3600
local MAX_BALANCE = 1000000000000000

local function I(x) return string.format('%d', x) end
local function N(x) return tonumber(x) or 0 end
-- floor(x * n / d), split so that no product exceeds 2^53 (Lua numbers are doubles): with
-- x = q*d + r, it is q*n + floor(r*n/d). For ratios of money (percent, basis points).
local function share(x, n, d) return math.floor(x / d) * n + math.floor((x % d) * n / d) end

-- Single-account scripts: KEYS[MARKER] is the call's idempotency marker, ARGV[1] the request's
-- fingerprint ('' = the call keeps no marker).
local MARKER, FP = ACCOUNT_KEYS + 1, ARGV[1]

local t = redis.call('TIME')
local NOW = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local function fail(reason, message)
  return cjson.encode({error = reason, message = message})
end

local function key(a, part) return KEYS[a.at] .. PARTS[part] end

local FIELDS = {'person_id', 'name', 'type', 'region', 'status', 'balance', 'held', 'seq', 'fence',
                'opened_ms', 'closed_to', 'payers_v', 'stop', 'stopped_ms', 'kept', 'closed_by'}

-- The account of KEYS[i], or nil. Holds past their lifetime are counted out of `held` here
-- (read only); `expire_due` writes their expiry once the script is past its refusals.
local function load(i)
  local v = redis.call('HMGET', KEYS[i], unpack(FIELDS))
  if not v[1] then return nil end
  local a = {at = i, person_id = v[1], name = v[2], type = v[3], region = v[4], status = v[5],
             balance = N(v[6]), held = N(v[7]), seq = N(v[8]), fence = N(v[9]),
             opened_ms = v[10], closed_to = v[11] or '', payers_v = N(v[12]),
             stop = v[13] or '', stopped_ms = v[14] or '', kept = v[15] == '1',
             closed_by = v[16] or '', due = {}}
  if a.held > 0 then
    for _, hold_id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[i] .. PARTS[4], '-inf', NOW)) do
      local h = cjson.decode(redis.call('HGET', KEYS[i] .. PARTS[3], hold_id))
      a.due[hold_id] = h
      if h.state == 'PLACED' then a.held = a.held - N(h.amount) end
    end
  end
  return a
end

local function is_closed(a)
  return a.status == ACCOUNT_STATUS_CLOSED or a.status == ACCOUNT_STATUS_TRANSFERRED_OUT
end
local function available(a) return a.balance - a.held end
-- Insurance stopped (停保, rule A9): an attribute beside the status, `stop` = the StopReason.
local function is_stopped(a) return a.stop ~= '' end
-- An employee's account, or a resident's kept from his employee years (`kept`, rule A9).
local function has_personal(a) return a.type == INSURANCE_TYPE_EMPLOYEE or a.kept end

local function view(a)
  return {person_id = a.person_id, name = a.name, insurance_type = a.type,
          region_code = a.region, status = a.status, balance = I(a.balance), held = I(a.held),
          opened_ms = a.opened_ms, stopped_reason = a.stop, stopped_ms = a.stopped_ms}
end

-- Why money may not leave this account now (reason, message), or nil.
local function why_not_pay(a)
  if not a then return 'ACCOUNT_NOT_FOUND', 'no such account' end
  if not has_personal(a) then
    return 'NO_PERSONAL_ACCOUNT', 'resident-insured persons have no personal account'
  end
  if is_closed(a) then return 'ACCOUNT_CLOSED', 'the account is closed' end
  if a.status == ACCOUNT_STATUS_SUSPENDED then
    return 'ACCOUNT_SUSPENDED', 'online settlement is suspended for this account'
  end
  if is_stopped(a) then return 'INSURANCE_STOPPED', 'the insurance of this account is stopped' end
  return nil
end

-- The answer for a payment whose record (at KEYS[k]) exists: it, or why it is refused; nil when
-- there is none.
local function made_before(k)
  local raw = redis.call('GET', KEYS[k])
  if not raw then return nil end
  local rec = cjson.decode(raw)
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
  if not rec or rec.state == PAYMENT_STATE_REVERSED or rec.kind ~= ENTRY_KIND_SETTLEMENT then
    return fail('SETTLEMENT_NOT_FOUND', 'no such settlement')
  end
  if rec.state == PAYMENT_STATE_CANCELLED then
    if rec.cancel_request_id == request_id or reversal then return raw end
    return fail('ALREADY_CANCELLED', 'this settlement was cancelled before')
  end
  return nil, rec
end

-- Why the patient may not have this payment made (rules S5, A2, A9), or nil. `year_key`: where
-- his premium of the year is marked as paid.
local function refuse_patient(patient, premium, quote, year_key)
  if premium then
    if not patient then return fail('ACCOUNT_NOT_FOUND', 'the beneficiary is not registered') end
    if patient.type ~= INSURANCE_TYPE_RESIDENT then
      return fail('BENEFICIARY_NOT_RESIDENT', 'only resident premiums are paid from accounts')
    end
    if is_stopped(patient) then
      return fail('INSURANCE_STOPPED', "the beneficiary's insurance is stopped")
    end
    if not quote and redis.call('EXISTS', year_key) == 1 then
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

-- A family-aid grant as the binder's account keeps it (PARTS[8], field = binding id): the array
-- [beneficiary, start_date, end_date, 1 = active], short enough that the hash stays compact
-- (docs/BENCHMARKS.md "Memory"); a grant kept before in named form reads the same.
local function grant_of(a, binding_id, raw)
  local g = cjson.decode(raw)
  if g[1] == nil then return g end
  return {binder_id = a.person_id, beneficiary_id = g[1], binding_id = binding_id,
          start_date = g[2], end_date = g[3], active = g[4] == 1}
end

local function keep_grant(a, g)
  redis.call('HSET', key(a, 8), g.binding_id,
             cjson.encode({g.beneficiary_id, g.start_date, g.end_date, g.active and 1 or 0}))
end

-- Why account `a` may not pay for the patient on the date (rule S4), or nil: without a binding
-- only for himself; with one, only under its grant, active and valid on the date, and only
-- while he is employee-insured (a resident is never a binder, A9).
local function why_not_source(a, binding_id, patient_id, on_date)
  if not a then return 'ACCOUNT_NOT_FOUND', 'a payer has no account' end
  if binding_id ~= '' or a.person_id ~= patient_id then
    local raw = binding_id ~= '' and redis.call('HGET', key(a, 8), binding_id)
    local g = raw and grant_of(a, binding_id, raw)
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

-- What a source gives to a payment with `left` fen still to pay: SETTLEMENT, up to its
-- available balance (0 if it may not pay, S4); PREMIUM, all of it or a refusal (A2).
-- Returns the amount, or nil and the refusal.
local function source_take(a, binding_id, patient_id, on_date, premium, left)
  local reason, message = why_not_source(a, binding_id, patient_id, on_date)
  if premium then
    if reason then return nil, fail(reason, message) end
    if available(a) < left then
      return nil, fail('INSUFFICIENT_FUNDS', 'one account pays the whole premium (A2)')
    end
  end
  if reason or a.balance <= 0 then return 0 end
  return math.min(left, math.max(0, available(a)))
end

local function refuse_payment(a)
  local reason, message = why_not_pay(a)
  return reason and fail(reason, message)
end

-- Fencing: a token lower than the highest this account has seen is refused.
local function refuse_fence(a, token)
  if N(token) < a.fence then
    return fail('STALE_FENCING_TOKEN', 'a newer lock holder has acted on this account')
  end
  return nil
end

-- An entry id the account service makes (`e` and hex digits: store.new_entry_id) gets the
-- entry's place in the ledger after a dot (`e...<hex>.<place>`), so it is found without an
-- index; the ids a payment names (`<payment id>-<n>`, `-r<n>`, `-p<n>`) and the ids made before
-- this form are kept in the entry index (PARTS[2]).
local function placed(entry_id, seq)
  if string.match(entry_id, '^e%x+$') then return entry_id .. '.' .. I(seq), true end
  return entry_id, false
end

-- The entry, or nil; and a refusal when the index and the ledger disagree.
local function entry_by_id(a, entry_id)
  local place = string.match(entry_id, '^e%x+%.(%d+)$')
  if place then
    local raw = #place <= 15 and redis.call('LINDEX', key(a, 1), N(place) - 1)
    local e = raw and cjson.decode(raw)
    if e and e.entry_id == entry_id then return e end
    return nil
  end
  local seq = redis.call('HGET', key(a, 2), entry_id)
  if not seq then return nil end
  local raw = redis.call('LINDEX', key(a, 1), N(seq) - 1)
  local e = raw and cjson.decode(raw)
  if not e or e.entry_id ~= entry_id then
    return nil, fail('INTERNAL', 'the entry index disagrees with the ledger')
  end
  return e
end

-- An entry written earlier, as the answer to a repeated call.
local function entry_answer(a, entry_id)
  local e, broken = entry_by_id(a, entry_id)
  if broken then return broken end
  if not e then return fail('INTERNAL', 'a recorded entry is missing from the ledger') end
  return cjson.encode(e)
end

-- The stored answer of an earlier call with this marker (KEYS[m]), if there is one.
local function replay(m, fp)
  if fp == '' then return nil end
  local raw = redis.call('GET', KEYS[m])
  if not raw then return nil end
  local rec = cjson.decode(raw)
  if rec.fp ~= fp then
    return fail('IDEMPOTENCY_CONFLICT', 'request_id was used before with other content')
  end
  return rec.result
end

-- ---------------------------------------------------------------- writes (after the checks)
local function expire_due(a)
  if next(a.due) == nil then return end
  for hold_id, h in pairs(a.due) do
    if h.state == 'PLACED' then
      h.state = 'EXPIRED'
      redis.call('HSET', key(a, 3), hold_id, cjson.encode(h))
    end
    redis.call('ZREM', key(a, 4), hold_id)
  end
  a.due = {}
  redis.call('HSET', KEYS[a.at], 'held', I(a.held))
end

local function append(a, entry_id, kind, amount, reference)
  a.seq = a.seq + 1
  a.balance = a.balance + amount
  local id, has_place = placed(entry_id, a.seq)
  local e = {entry_id = id, person_id = a.person_id, kind = kind, amount = I(amount),
             balance_after = I(a.balance), reference = reference, created_ms = I(NOW)}
  redis.call('RPUSH', key(a, 1), cjson.encode(e))
  if not has_place then redis.call('HSET', key(a, 2), id, I(a.seq)) end
  return e
end

-- A credit back to an account; if it has closed or moved out since, the money is then paid on
-- the way its balance went (rule S9), so the refund is written and no fen is lost.
local function credit_back(a, entry_id, amount, reference, payon_entry_id)
  local e = append(a, entry_id, ENTRY_KIND_REFUND, amount, reference)
  if is_closed(a) then
    local kind = a.closed_by ~= '' and a.closed_by
                 or (a.status == ACCOUNT_STATUS_CLOSED and ENTRY_KIND_WITHDRAWAL
                     or ENTRY_KIND_TRANSFER_OUT)
    append(a, payon_entry_id, kind, -amount, a.closed_to)
  end
  return e
end

-- An event to the account's outbox, numbered by the account (`n`: 1, 2, ... for ever, kept in
-- its hash), which names the event for good: the outbox stream itself is deleted once relayed.
local function emit(a, kind)
  local n = redis.call('HINCRBY', KEYS[a.at], 'events', 1)
  redis.call('XADD', key(a, 7), '*', 'type', kind, 'person_id', a.person_id,
             'status', a.status, 'region_code', a.region, 'insurance_type', a.type,
             'at_ms', I(NOW), 'n', n)
end

-- `held` was counted net of the holds past their lifetime (`load`): their expiry is written
-- with it, or the next `load` would count them out a second time.
local function save(a)
  expire_due(a)
  redis.call('HSET', KEYS[a.at], 'name', a.name, 'type', a.type, 'region', a.region,
             'status', a.status, 'balance', I(a.balance), 'held', I(a.held), 'seq', I(a.seq),
             'fence', I(a.fence), 'closed_to', a.closed_to)
end

-- The marks most accounts never get (a stop: A9; a resident's kept account: A9; how a closed
-- account's balance went: A4, A5), written where set and removed where not, so an account
-- without them keeps none in its hash. Not part of `save`: the payment path never changes them.
local function save_marks(a)
  local marks = {{'stop', a.stop}, {'stopped_ms', a.stopped_ms}, {'kept', a.kept and '1' or ''},
                 {'closed_by', a.closed_by}}
  for _, mark in ipairs(marks) do
    if mark[2] ~= '' then redis.call('HSET', KEYS[a.at], mark[1], mark[2])
    else redis.call('HDEL', KEYS[a.at], mark[1]) end
  end
end

-- Stores the answer under the call's marker (KEYS[m]) with the change it answers.
local function finish(m, fp, result)
  local encoded = cjson.encode(result)
  if fp ~= '' then
    redis.call('SET', KEYS[m], cjson.encode({fp = fp, result = encoded}), 'EX', RECORD_TTL_S)
  end
  return encoded
end
