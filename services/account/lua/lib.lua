-- The shared head of every account script (store.py prepends it, after the enum constants and
-- the account's FIELDS and PARTS, which store.py defines once for Python and Lua alike).
--
-- An account is one key of KEYS, its hash (`acct:{<person_id>}`); its other keys are that name
-- and a suffix (PARTS: 1 ledger, 2 entry index, 3 holds (kept from before holds were retired),
-- 4 their expiry, 5 refunds, 6 policies, 7 outbox, 8 grants, 9 the payments for the person as a
-- patient, 10 those he paid family aid in, 11 his contribution months, 12 the aid quotas he
-- funds; his `quotas` field is the other side: the quotas granted to him, in the order drawn). They share the hash tag,
-- so they live in the account's slot, also under Redis Cluster. `load(i)` reads the account of
-- KEYS[i]. A script reads and checks first and writes only after its last refusal, through
-- `append`, `emit`, `save` and `finish`: Redis never rolls a script back, so a refusal must come
-- before the first write. Integers travel as strings (`I`): cjson and Redis print big or
-- negative-zero doubles in forms HINCRBY and the parsers refuse.
local ACCOUNT_KEYS = 1
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

-- The Redis server's clock (ms), read once and only by the scripts that need it.
local NOW_MS
local function now()
  if not NOW_MS then
    local t = redis.call('TIME')
    NOW_MS = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  end
  return NOW_MS
end

local function fail(reason, message)
  return cjson.encode({error = reason, message = message})
end

local function key(a, part) return KEYS[a.at] .. PARTS[part] end

-- Fencing tokens are decimal strings, counted up digit by digit: a Lua number is a double, and
-- past 2^53 one more would be the same number (three holders would share one token).
local function fence_next(f)
  local digits, i = {}, #f
  for c in string.gmatch(f, '%d') do table.insert(digits, c) end
  if #digits ~= #f or #f == 0 then digits, i = {'0'}, 1 end
  while i > 0 and digits[i] == '9' do digits[i] = '0'; i = i - 1 end
  if i == 0 then table.insert(digits, 1, '1') else digits[i] = I(N(digits[i]) + 1) end
  local out = table.concat(digits):gsub('^0+(%d)', '%1')
  return out
end

-- An account's lock (services/account/locks.py): `<owner token> <what> <lease end ms>` in its
-- `lock` field; `what` is the payment the lock was taken for ('-' for the account's own
-- operations). Absent or '' when free.
local function lock_of(raw)
  if not raw or raw == '' then return nil end
  local token, what, ends = string.match(raw, '^(%S+) (%S+) (%d+)$')
  if not token then return {token = '?', what = '-', ends = 0} end
  return {token = token, what = what, ends = N(ends)}
end

-- The account as HMGET of FIELDS gave it (`v`), or nil; `at` is its place in KEYS (0 when it
-- was read by another script and handed over: such an account is never written).
local function from_fields(at, v)
  if not v[1] then return nil end
  return {at = at, person_id = v[1], name = v[2], type = v[3], region = v[4], status = v[5],
          balance = N(v[6]), held = 0, seq = N(v[8]), fence = v[9] or '0',
          opened_ms = v[10], closed_to = v[11] or '', payers_v = N(v[12]),
          stop = v[13] or '', stopped_ms = v[14] or '', kept = v[15] == '1',
          closed_by = v[16] or '', lock = lock_of(v[17]), payers = v[18] or '[]',
          events = N(v[19]), reserved = N(v[20]), quotas = v[21] or '[]'}
end

local function load(i)
  return from_fields(i, redis.call('HMGET', KEYS[i], unpack(FIELDS)))
end

local function is_closed(a)
  return a.status == ACCOUNT_STATUS_CLOSED or a.status == ACCOUNT_STATUS_TRANSFERRED_OUT
end
-- What may be spent: the balance less what is set aside for his aid quotas (N2).
local function available(a) return a.balance - a.reserved end
-- Insurance stopped (停保, rule A9): an attribute beside the status, `stop` = the StopReason.
local function is_stopped(a) return a.stop ~= '' end
-- An employee's account, or a resident's kept from his employee years (`kept`, rule A9).
local function has_personal(a) return a.type == INSURANCE_TYPE_EMPLOYEE or a.kept end

local function view(a)
  return {person_id = a.person_id, name = a.name, insurance_type = a.type,
          region_code = a.region, status = a.status, balance = I(a.balance), held = I(a.held),
          opened_ms = a.opened_ms, stopped_reason = a.stop, stopped_ms = a.stopped_ms,
          reserved = I(a.reserved)}
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

local function refuse_payment(a)
  local reason, message = why_not_pay(a)
  return reason and fail(reason, message)
end

-- An account operation that deducts (commercial purchase, withdrawal, transfer out) runs under
-- the account's lock: its fencing token must still be the account's latest, or a holder whose
-- lease ran out and was overtaken would act on what it read before (locks.py).
local function refuse_fence(a, token)
  if a.fence ~= token then
    return fail('LOCK_TIMEOUT', 'the account lock was taken over meanwhile; retry')
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

-- An aid quota as its funder's account keeps it (PARTS[12], field = quota id, rules N1-N5): the
-- array [relative, relationship, granted, used, status, end reason, created ms, ended ms, grant
-- sequence], amounts and times as strings. What remains of an ACTIVE one is set aside: the
-- account's `reserved` is the sum of them (its available balance excludes it).
local function quota_of(raw)
  if not raw then return nil end
  local q = cjson.decode(raw)
  return {relative = q[1], relationship = q[2], granted = N(q[3]), used = N(q[4]),
          status = q[5], reason = q[6], created_ms = q[7], ended_ms = q[8], seq = q[9]}
end

local function read_quota(a, quota_id)
  return quota_of(redis.call('HGET', key(a, 12), quota_id))
end

local function keep_quota(a, quota_id, q)
  redis.call('HSET', key(a, 12), quota_id,
             cjson.encode({q.relative, q.relationship, I(q.granted), I(q.used), q.status,
                           q.reason, q.created_ms, q.ended_ms, q.seq}))
end

local function quota_view(funder_id, quota_id, q)
  local remaining = q.granted - q.used  -- of an ENDED one: what was released when it ended
  return {quota_id = quota_id, funder_id = funder_id, relative_id = q.relative,
          relationship = q.relationship, granted = I(q.granted), used = I(q.used),
          remaining = I(remaining), status = q.status, end_reason = q.reason,
          created_ms = q.created_ms, ended_ms = q.ended_ms, seq = q.seq}
end

local function reserve(a, amount)
  a.reserved, a.reserved_changed = a.reserved + amount, true
end

-- The quota ENDED for `reason`, and what remains of it released (one step, N2, N4).
local function end_quota(a, quota_id, q, reason)
  if q.status == QUOTA_STATUS_ACTIVE then reserve(a, -(q.granted - q.used)) end
  q.status, q.reason, q.ended_ms = QUOTA_STATUS_ENDED, reason, I(now())
  keep_quota(a, quota_id, q)
end

-- Every quota he funds that is ACTIVE or awaits consent, ended (N4: his stop, withdrawal, move
-- or change to resident, before that call returns).
local function end_quotas(a, reason)
  local all = redis.call('HGETALL', key(a, 12))
  for i = 1, #all, 2 do
    local q = quota_of(all[i + 1])
    if q.status ~= QUOTA_STATUS_ENDED then end_quota(a, all[i], q, reason) end
  end
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
-- One ledger entry. `indexed`: the entry index already names the id (a payment's step claimed
-- it with HSETNX); `at_ms`: the entry's time when it is the payment's, else now.
local function append(a, entry_id, kind, amount, reference, at_ms, indexed)
  a.seq = a.seq + 1
  a.balance = a.balance + amount
  local id, has_place = placed(entry_id, a.seq)
  local e = {entry_id = id, person_id = a.person_id, kind = kind, amount = I(amount),
             balance_after = I(a.balance), reference = reference, created_ms = at_ms or I(now())}
  redis.call('RPUSH', key(a, 1), cjson.encode(e))
  if not has_place and not indexed then redis.call('HSET', key(a, 2), id, I(a.seq)) end
  return e
end

-- A credit back to an account; if it has closed or moved out since, the money is then paid on
-- the way its balance went (rule S9), so the refund is written and no fen is lost.
local function credit_back(a, entry_id, amount, reference, payon_entry_id, indexed)
  local e = append(a, entry_id, ENTRY_KIND_REFUND, amount, reference, nil, indexed)
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
             'at_ms', I(now()), 'n', n)
end

-- The fields every change may touch, in one HSET; the lock only when it changed (`lock_raw`:
-- what to write, '' = released), so an account that never locked keeps no such field. `held`
-- is written 0: holds are retired, and a count kept from before they were is void.
local function save(a)
  local fields = {'name', a.name, 'type', a.type, 'region', a.region, 'status', a.status,
                  'balance', I(a.balance), 'held', '0', 'seq', I(a.seq), 'fence', a.fence,
                  'closed_to', a.closed_to}
  if a.lock_raw then
    table.insert(fields, 'lock')
    table.insert(fields, a.lock_raw)
  end
  redis.call('HSET', KEYS[a.at], unpack(fields))
  if a.reserved_changed then  -- kept only by an account that funds a quota
    if a.reserved ~= 0 then redis.call('HSET', KEYS[a.at], 'reserved', I(a.reserved))
    else redis.call('HDEL', KEYS[a.at], 'reserved') end
  end
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
