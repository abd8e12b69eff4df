-- The binding service's shared Lua (store.py `script` puts it after the generated constants:
-- BINDING_STATUS_*, and RECORD_STATUS, RECORD_ENDED_MS, RECORD_CREATED_MS, the places of
-- domain.RECORD in a record's array). Local functions only: nothing runs here.

-- His payer list, 1st payer first.
local function ids_of(views)
  local found, all = {}, redis.call('HGETALL', views)
  for i = 1, #all, 2 do
    if string.sub(all[i], 1, 2) == 'q:' then
      found[#found + 1] = {tonumber(all[i + 1]), string.sub(all[i], 3)}
    end
  end
  table.sort(found, function(x, y) return x[1] < y[1] end)
  local ids = {}
  for i, f in ipairs(found) do ids[i] = f[2] end
  return ids
end

-- Each of these ids at its place in the list (ids[from] onwards).
local function place_payers(views, ids, from)
  for i = from, #ids do redis.call('HSET', views, 'q:' .. ids[i], i) end
end

local function position(ids, id)
  for i, listed in ipairs(ids) do if listed == id then return i end end
  return nil
end

local function changed_order(views, pending_key, beneficiary)
  local version = redis.call('HINCRBY', views, 'v', 1)
  redis.call('ZADD', pending_key, version, beneficiary)
end

-- His ACTIVE bindings as binder: one `pair:` field each.
local function active_count(views)
  local n, all = 0, redis.call('HKEYS', views)
  for _, field in ipairs(all) do
    if string.sub(field, 1, 5) == 'pair:' then n = n + 1 end
  end
  return n
end

-- The answer of an earlier creation under this request (`idem`), or a refusal: the pair's
-- binding exists (B7), the binder is at his limit (B4); nil when the binding may be made.
-- Checked before any write, atomically with it, so concurrent creations cannot exceed them.
local function refuse_create(idem, binder_views, beneficiary, fp, limit)
  local prior = redis.call('GET', idem)
  if prior then
    local rec = cjson.decode(prior)
    if rec.fp ~= fp then
      return cjson.encode({error='IDEMPOTENCY_CONFLICT',
                           message='request_id was used before with other content'})
    end
    return rec.result
  end
  if redis.call('HEXISTS', binder_views, 'pair:' .. beneficiary) == 1 then
    return cjson.encode({error='BINDING_EXISTS',
                         message='this pair already has an active binding'})
  end
  if active_count(binder_views) >= tonumber(limit) then
    return cjson.encode({error='BINDING_LIMIT_REACHED',
                         message='binder already has ' .. limit .. ' active bindings'})
  end
  return nil
end

-- The binder's side of a new binding: its record; in his views, his history and the pair.
local function add_binder_side(record, binder_views, id, rec_json, created_ms, beneficiary)
  redis.call('SET', record, rec_json)
  redis.call('HSET', binder_views, 'a:' .. id, created_ms, 'pair:' .. beneficiary, id)
end

-- The beneficiary's side of a new binding: in his history, last on his payer list; its priority.
local function add_view(views, outbox, id, created_ms, beneficiary)
  redis.call('HSET', views, 'e:' .. id, created_ms)
  local ids = ids_of(views)
  ids[#ids + 1] = id
  place_payers(views, ids, #ids)
  changed_order(views, outbox, beneficiary)
  return #ids
end

-- A binding made for him that awaits his consent (B14): in his history, not a payer.
local function add_awaiting(views, id, created_ms)
  redis.call('HSET', views, 'e:' .. id, created_ms, 'w:' .. id, created_ms)
end

-- A kept record (either form) and its status, as a string.
local function status_of(raw)
  local b = cjson.decode(raw)
  if b[1] == nil then return b, tostring(b.status) end
  return b, tostring(b[RECORD_STATUS])
end

-- Off his payer list; whether it was on it.
local function drop_payer(views, id)
  local ids = ids_of(views)
  local at = position(ids, id)
  if not at then return false end
  table.remove(ids, at)
  redis.call('HDEL', views, 'q:' .. id)
  place_payers(views, ids, at)
  return true
end

-- A creation given up (Lifecycle, the sweep of grants written for bindings not made): its id
-- is never made afterwards, so the grant revoked for it is never needed.
local function voided(void_key)
  if redis.call('EXISTS', void_key) == 1 then
    return cjson.encode({error='LOCK_TIMEOUT',
                         message='this creation took too long and was given up; retry'})
  end
  return nil
end

-- A creation's answer, kept under its request for a repeat.
local function created(idem, fp, id, rec_json, priority, ttl_s)
  local result = cjson.encode({binding=cjson.decode(rec_json), priority=priority, id=id})
  redis.call('SET', idem, cjson.encode({fp=fp, result=result}), 'EX', ttl_s)
  return result
end

-- A binding ended on the binder's side (its record, his pair), its grant marked in `revokes` at
-- `marked_ms` (the marks' clock: Lifecycle.revokes): the record JSON, whether it ended now, and
-- the status it had. `which` = 'any' ends an ACTIVE or PENDING_CONSENT one,
-- 'pending' only one still awaiting consent; any other state is returned unchanged; '' when
-- there is no such binding. A record kept in named form (before records were arrays) ends in
-- that form.
local function end_binder_side(record, binder_views, revokes, id, beneficiary, status, ended_ms,
                               which, marked_ms)
  local raw = redis.call('GET', record)
  if not raw then return '', false, '' end
  local b, now = status_of(raw)
  local named = b[1] == nil
  local live = now == BINDING_STATUS_PENDING_CONSENT
               or (which == 'any' and now == BINDING_STATUS_ACTIVE)
  if not live then return raw, false, now end
  if named then
    b.status, b.ended_ms = tonumber(status), tonumber(ended_ms)
  else
    b[RECORD_STATUS], b[RECORD_ENDED_MS] = tonumber(status), tonumber(ended_ms)
  end
  raw = cjson.encode(b)
  redis.call('SET', record, raw)
  local pair = 'pair:' .. beneficiary
  if redis.call('HGET', binder_views, pair) == id then redis.call('HDEL', binder_views, pair) end
  redis.call('ZADD', revokes, marked_ms, id)  -- its grant to revoke (Lifecycle.revokes)
  return raw, true, now
end

-- A binding awaiting consent made ACTIVE and taken off the consent index (nil); or, with
-- nothing written, why not: 'gone', 'unchanged' (it no longer awaits consent), 'overdue'
-- (its time has passed: it is to lapse). (services.binding.consent)
local function activate(record, due_key, id, now_ms)
  local raw = redis.call('GET', record)
  if not raw then return 'gone' end
  local b, status = status_of(raw)
  if status ~= BINDING_STATUS_PENDING_CONSENT then return 'unchanged' end
  local due = redis.call('ZSCORE', due_key, id)
  if due and tonumber(due) <= tonumber(now_ms) then return 'overdue' end
  if b[1] == nil then b.status = tonumber(BINDING_STATUS_ACTIVE)
  else b[RECORD_STATUS] = tonumber(BINDING_STATUS_ACTIVE) end
  redis.call('SET', record, cjson.encode(b))
  redis.call('ZREM', due_key, id)
  return nil
end
