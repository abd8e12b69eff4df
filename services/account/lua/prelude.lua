-- Shared head of every account script (store.py prepends it).
-- KEYS: 1 account hash, 2 ledger list, 3 entry index, 4 holds, 5 hold expiry zset,
--       6 refunds, 7 policies, 8 outbox stream, 9 idempotency record
-- ARGV[1]: request fingerprint ('' = no idempotency record for this call)
-- Returns a JSON string: the result table, or {error=REASON, message=...}.
-- Integers travel as strings: cjson prints numbers with 14 significant digits only.
local ACCT, LEDGER, EIDX, HOLDS, HEXP = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local REFUNDS, POLICIES, OUTBOX, IDEM = KEYS[6], KEYS[7], KEYS[8], KEYS[9]
local FP = ARGV[1]
local IDEM_TTL_S = 7 * 24 * 3600
local MAX_BALANCE = 1000000000000000
local EMPLOYEE = '1'
local ACTIVE, SUSPENDED, CLOSED, TRANSFERRED_OUT = '1', '2', '3', '4'
local K_SETTLEMENT, K_PREMIUM, K_REFUND, K_COMMERCIAL = '4', '5', '6', '7'
local K_WITHDRAWAL, K_TRANSFER_OUT = '8', '9'

local function I(x) return string.format('%d', x) end
local function N(x) return tonumber(x) or 0 end

local t = redis.call('TIME')
local NOW = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local function fail(reason, message)
  return cjson.encode({error = reason, message = message})
end

local function finish(result)
  local encoded = cjson.encode(result)
  if FP ~= '' then
    redis.call('SET', IDEM, cjson.encode({fp = FP, result = encoded}), 'EX', IDEM_TTL_S)
  end
  return encoded
end

-- The stored result of an earlier call with this key, a conflict, or nil for a first call.
local function replay()
  if FP == '' then return nil end
  local raw = redis.call('GET', IDEM)
  if not raw then return nil end
  local rec = cjson.decode(raw)
  if rec.fp ~= FP then
    return fail('IDEMPOTENCY_CONFLICT', 'request_id was used before with other content')
  end
  return rec.result
end

-- Holds past their lifetime read EXPIRED and give their amount back, on every touch.
local function expire_holds()
  local due = redis.call('ZRANGEBYSCORE', HEXP, '-inf', NOW)
  for _, hold_id in ipairs(due) do
    local h = cjson.decode(redis.call('HGET', HOLDS, hold_id))
    if h.state == 'PLACED' then
      h.state = 'EXPIRED'
      redis.call('HSET', HOLDS, hold_id, cjson.encode(h))
      redis.call('HINCRBY', ACCT, 'held', -N(h.amount))
    end
    redis.call('ZREM', HEXP, hold_id)
  end
end

local function exists() return redis.call('EXISTS', ACCT) == 1 end
local function get(field) return redis.call('HGET', ACCT, field) end
local function is_closed(status) return status == CLOSED or status == TRANSFERRED_OUT end

local function view()
  local a = redis.call('HGETALL', ACCT)
  local v = {}
  for i = 1, #a, 2 do v[a[i]] = a[i + 1] end
  return {person_id = v.person_id, name = v.name, insurance_type = v.type, region_code = v.region,
          status = v.status, balance = v.balance, held = v.held, opened_ms = v.opened_ms}
end

-- The usual refusals before money moves out of an account, or nil when it may.
local function check_can_pay()
  if not exists() then return fail('ACCOUNT_NOT_FOUND', 'no such account') end
  if get('type') ~= EMPLOYEE then
    return fail('NO_PERSONAL_ACCOUNT', 'resident-insured persons have no personal account')
  end
  local status = get('status')
  if is_closed(status) then return fail('ACCOUNT_CLOSED', 'the account is closed') end
  if status == SUSPENDED then
    return fail('ACCOUNT_SUSPENDED', 'online settlement is suspended for this account')
  end
  return nil
end

-- Fencing: refuse a token lower than the highest this account has seen. A script calls
-- remember_fence only once every check has passed, so a refusal changes nothing.
local function check_fence(token)
  if N(token) < N(get('fence')) then
    return fail('STALE_FENCING_TOKEN', 'a newer lock holder has acted on this account')
  end
  return nil
end

local function remember_fence(token)
  if N(token) > N(get('fence')) then redis.call('HSET', ACCT, 'fence', token) end
end

local function available() return N(get('balance')) - N(get('held')) end

local function append_entry(entry_id, kind, amount, reference)
  local seq = redis.call('HINCRBY', ACCT, 'seq', 1)
  local balance = redis.call('HINCRBY', ACCT, 'balance', amount)
  local e = {entry_id = entry_id, person_id = get('person_id'), kind = kind, amount = I(amount),
             balance_after = I(balance), reference = reference, created_ms = I(NOW)}
  redis.call('RPUSH', LEDGER, cjson.encode(e))
  redis.call('HSET', EIDX, entry_id, seq)
  return e
end

local function entry_by_id(entry_id)
  local seq = redis.call('HGET', EIDX, entry_id)
  if not seq then return nil end
  return cjson.decode(redis.call('LINDEX', LEDGER, N(seq) - 1))
end

local function emit(kind)
  local v = view()
  redis.call('XADD', OUTBOX, '*', 'type', kind, 'person_id', v.person_id, 'status', v.status,
             'region_code', v.region_code, 'insurance_type', v.insurance_type, 'at_ms', I(NOW))
end

-- A credit back to an account; if it has closed or moved out since, the money is then paid on
-- the way its balance went (rule S9), so the refund is written and no fen is lost.
local function credit_back(entry_id, amount, reference, payon_entry_id)
  local e = append_entry(entry_id, K_REFUND, amount, reference)
  local status = get('status')
  if is_closed(status) then
    local kind = status == CLOSED and K_WITHDRAWAL or K_TRANSFER_OUT
    append_entry(payon_entry_id, kind, -amount, get('closed_to') or '')
  end
  return e
end

local stored = replay()
if stored then return stored end
expire_holds()
