"""Every Redis key and script of the binding service.

Keys carry a province hash tag: the binder's views and the binding record under the binder's
province, the beneficiary's views under the beneficiary's. Under the default policy (B5) both are
one province, so one script updates both views atomically on one shard; across two provinces (a
profile without B5) the two sides are two steps, finished by the relay loop if cut off. Each
person's provinces (`bind:where:{<person_id>}`) are recorded before that script, so a binding is
never left where its people's views cannot find it. The binding id names both provinces, so any
binding can be found from its id alone.
"""

from __future__ import annotations

import secrets
from typing import cast

import orjson
import redis.asyncio as aioredis

from services.binding.domain import Binding
from services.common.enums import BindingStatus, lua_constants
from services.common.errors import DomainError
from services.common.redisdb import get_many

IDEM_TTL_S = 7 * 24 * 3600

# Every change of a beneficiary's payer list also bumps the list's version and marks it in the
# province's order outbox (`order-pending`), in the same script: the new order then reaches the
# account service (SetFamilyAidOrder) at once, or from the relay loop if that push failed.
_HEAD = (
    lua_constants(BindingStatus)
    + """
local function changed_order(version_key, pending_key, beneficiary)
  local version = redis.call('INCR', version_key)
  redis.call('ZADD', pending_key, version, beneficiary)
end

-- The answer of an earlier creation under this request (`idem`), or a refusal: the pair's
-- binding exists (B7), the binder is at his limit (B4); nil when the binding may be made.
-- Checked before any write, atomically with it, so concurrent creations cannot exceed them.
local function refuse_create(idem, pair, active, fp, limit)
  local prior = redis.call('GET', idem)
  if prior then
    local rec = cjson.decode(prior)
    if rec.fp ~= fp then
      return cjson.encode({error='IDEMPOTENCY_CONFLICT',
                           message='request_id was used before with other content'})
    end
    return rec.result
  end
  if redis.call('EXISTS', pair) == 1 then
    return cjson.encode({error='BINDING_EXISTS',
                         message='this pair already has an active binding'})
  end
  if redis.call('SCARD', active) >= tonumber(limit) then
    return cjson.encode({error='BINDING_LIMIT_REACHED',
                         message='binder already has ' .. limit .. ' active bindings'})
  end
  return nil
end

-- The binder's side of a new binding: its record, his active set and history, the pair.
local function add_binder_side(record, active, history, pair, id, rec_json, created_ms)
  redis.call('SET', record, rec_json)
  redis.call('SADD', active, id)
  redis.call('ZADD', history, created_ms, id)
  redis.call('SET', pair, id)
end

-- The beneficiary's side of a new binding: in his history, last on his payer list; its priority.
local function add_view(history, payers, version, outbox, id, created_ms, beneficiary)
  redis.call('ZADD', history, created_ms, id)
  local priority = redis.call('RPUSH', payers, id)
  changed_order(version, outbox, beneficiary)
  return priority
end

-- A creation's answer, kept under its request for a repeat.
local function created(idem, fp, rec_json, priority, ttl_s)
  local result = cjson.encode({binding=cjson.decode(rec_json), priority=priority})
  redis.call('SET', idem, cjson.encode({fp=fp, result=result}), 'EX', ttl_s)
  return result
end

-- An ACTIVE binding ended on the binder's side (its record, his active set, the pair): the
-- record JSON, and whether it ended now; any other state is returned unchanged; '' when there
-- is no such binding.
local function end_binder_side(record, active, pair, id, status, ended_ms)
  local raw = redis.call('GET', record)
  if not raw then return '', false end
  local b = cjson.decode(raw)
  if tostring(b.status) ~= BINDING_STATUS_ACTIVE then return raw, false end
  b.status = tonumber(status)
  b.ended_ms = tonumber(ended_ms)
  raw = cjson.encode(b)
  redis.call('SET', record, raw)
  redis.call('SREM', active, id)
  if redis.call('GET', pair) == id then redis.call('DEL', pair) end
  return raw, true
end
"""
)
# KEYS: 1 record, 2 binder active set, 3 binder history, 4 pair, 5 beneficiary history,
#       6 payer list, 7 idempotency record, 8 payer list version, 9 order outbox
# ARGV: 1 fingerprint, 2 binding id, 3 record JSON, 4 binding limit, 5 created ms, 6 TTL s,
#       7 beneficiary
# Returns {binding=record, priority=n} or {error=...}.
_CREATE = (
    _HEAD
    + """
local refused = refuse_create(KEYS[7], KEYS[4], KEYS[2], ARGV[1], ARGV[4])
if refused then return refused end
add_binder_side(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[2], ARGV[3], ARGV[5])
local priority = add_view(KEYS[5], KEYS[6], KEYS[8], KEYS[9], ARGV[2], ARGV[5], ARGV[7])
return created(KEYS[7], ARGV[1], ARGV[3], priority, ARGV[6])
"""
)
# KEYS: 1 record, 2 binder active set, 3 pair, 4 payer list, 5 payer list version, 6 order outbox
# ARGV: 1 binding id, 2 new status (REMOVED or LAPSED), 3 ended ms, 4 beneficiary
# Ends an ACTIVE binding and closes the gap in the payer order (B10, B11); any other state is
# returned unchanged. Returns the record JSON, or '' when there is no such binding.
_END = (
    _HEAD
    + """
local raw, ended = end_binder_side(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2], ARGV[3])
if ended then
  redis.call('LREM', KEYS[4], 0, ARGV[1])
  changed_order(KEYS[5], KEYS[6], ARGV[4])
end
return raw
"""
)
# A binding across two provinces (a profile with same_province = false) is made and ended in two
# steps, one script on each province's slot, so that it also runs on a Redis Cluster: first the
# binder's side, with the binding marked in the binder's province as `views-due`; then the
# beneficiary's side; then the mark is taken off. The relay loop finishes every mark a crash left
# (Lifecycle.relay): each step can run again and again with the same outcome.
# KEYS: 1 record, 2 binder active set, 3 binder history, 4 pair, 5 idempotency record, 6 views due
# ARGV: 1 fingerprint, 2 binding id, 3 record JSON, 4 binding limit, 5 created ms, 6 TTL s
# Returns {binding=record, priority=0} or {error=...}, as _CREATE does (the priority is the
# beneficiary side's to give).
_CREATE_BINDER_SIDE = (
    _HEAD
    + """
local refused = refuse_create(KEYS[5], KEYS[4], KEYS[2], ARGV[1], ARGV[4])
if refused then return refused end
add_binder_side(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[2], ARGV[3], ARGV[5])
redis.call('ZADD', KEYS[6], ARGV[5], ARGV[2])
return created(KEYS[5], ARGV[1], ARGV[3], 0, ARGV[6])
"""
)
# KEYS: 1 record, 2 binder active set, 3 pair, 4 views due; ARGV: 1 binding id, 2 new status,
# 3 ended ms, 4 the time of the mark (ms). The binder's side of an end; as _END otherwise.
_END_BINDER_SIDE = (
    _HEAD
    + """
local raw, ended = end_binder_side(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2], ARGV[3])
if ended then redis.call('ZADD', KEYS[4], ARGV[4], ARGV[1]) end
return raw
"""
)
# The beneficiary's side. KEYS: 1 beneficiary history, 2 payer list, 3 payer list version,
# 4 order outbox; ARGV: 1 binding id, 2 created ms, 3 beneficiary, 4 '1' = the binding is ACTIVE
# (add it to the payer list), '0' = it has ended (take it off).
# Once a binding is in the beneficiary's history it is never added to his payers again, so a
# late add after the end changes nothing. Returns the binding's priority (0 = not a payer).
_BENEFICIARY_SIDE = (
    _HEAD
    + """
local known = redis.call('ZSCORE', KEYS[1], ARGV[1])
if ARGV[4] == '1' then
  if not known then
    return add_view(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[1], ARGV[2], ARGV[3])
  end
  local at = redis.call('LPOS', KEYS[2], ARGV[1])
  return at and at + 1 or 0
end
if not known then redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1]) end
if redis.call('LREM', KEYS[2], 0, ARGV[1]) > 0 then changed_order(KEYS[3], KEYS[4], ARGV[3]) end
return 0
"""
)
# KEYS: 1 payer list, 2 payer list version, 3 order outbox; ARGV: 1 beneficiary, then the
# binding ids in the new order. Refused (returns 0) unless they are exactly the ids on the list.
_REORDER = (
    _HEAD
    + """
local ids = {unpack(ARGV, 2)}
local now = redis.call('LRANGE', KEYS[1], 0, -1)
if #now ~= #ids then return 0 end
local wanted = {}
for _, id in ipairs(ids) do wanted[id] = true end
for _, id in ipairs(now) do if not wanted[id] then return 0 end end
redis.call('DEL', KEYS[1])
redis.call('RPUSH', KEYS[1], unpack(ids))
changed_order(KEYS[2], KEYS[3], ARGV[1])
return 1
"""
)
# KEYS: 1 order outbox; ARGV: 1 beneficiary, 2 the version that reached the account service.
# Clears the mark unless a newer change marked it again since.
_PUSHED = """
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if score and tonumber(score) <= tonumber(ARGV[2]) then redis.call('ZREM', KEYS[1], ARGV[1]) end
return 0
"""


def _tag(province: str) -> str:
    return f"bind:{{{province}}}"


def new_binding_id(binder_province: str, beneficiary_province: str) -> str:
    return f"B{binder_province}{beneficiary_province}{secrets.token_hex(8)}"


def provinces_of(binding_id: str) -> tuple[str, str]:
    """Binder's and beneficiary's province from a binding id; ValueError if it is not ours."""
    if len(binding_id) != 21 or not binding_id.startswith("B") or not binding_id[1:5].isdigit():
        raise ValueError(binding_id)
    return binding_id[1:3], binding_id[3:5]


class Keys:
    @staticmethod
    def where(pid: str) -> str:
        return f"bind:where:{{{pid}}}"

    @staticmethod
    def record(binding_id: str) -> str:
        return f"{_tag(provinces_of(binding_id)[0])}:rec:{binding_id}"

    @staticmethod
    def binder_active(province: str, pid: str) -> str:
        return f"{_tag(province)}:binder-active:{pid}"

    @staticmethod
    def binder_all(province: str, pid: str) -> str:
        return f"{_tag(province)}:binder:{pid}"

    @staticmethod
    def pair(province: str, binder: str, beneficiary: str) -> str:
        return f"{_tag(province)}:pair:{binder}:{beneficiary}"

    @staticmethod
    def beneficiary_all(province: str, pid: str) -> str:
        return f"{_tag(province)}:bene:{pid}"

    @staticmethod
    def payers(province: str, pid: str) -> str:
        return f"{_tag(province)}:payers:{pid}"

    @staticmethod
    def idem(province: str, key: str) -> str:
        return f"{_tag(province)}:idem:{key}"

    @staticmethod
    def order_version(province: str, pid: str) -> str:
        return f"{_tag(province)}:payers-v:{pid}"

    @staticmethod
    def order_outbox(province: str) -> str:
        return f"{_tag(province)}:order-pending"

    @staticmethod
    def views_due(province: str) -> str:
        """Bindings from this province to another whose beneficiary's side is still due."""
        return f"{_tag(province)}:views-due"


class BindingStore:
    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis
        self._create = redis.register_script(_CREATE)
        self._end = redis.register_script(_END)
        self._reorder = redis.register_script(_REORDER)
        self._pushed = redis.register_script(_PUSHED)
        self._create_binder_side = redis.register_script(_CREATE_BINDER_SIDE)
        self._end_binder_side = redis.register_script(_END_BINDER_SIDE)
        self._beneficiary_side = redis.register_script(_BENEFICIARY_SIDE)

    async def provinces(self, pid: str) -> list[str]:
        """The provinces under which this person has binding views (one, unless he moved)."""
        return sorted(cast(set[str], await self.redis.smembers(Keys.where(pid))))

    async def create(self, b: Binding, limit: int, fp: str, marker: str) -> Binding:
        """The binding and both people's views in one script. Each person's provinces are
        recorded first (each under his own hash tag, so not in that script): should the script
        then refuse or never run, a province is listed where nothing is found, which readers
        pass over; never a view that cannot be found."""
        pb_, pe = provinces_of(b.binding_id)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.sadd(Keys.where(b.binder_id), pb_)
            pipe.sadd(Keys.where(b.beneficiary_id), pe)
            await pipe.execute()
        if pb_ != pe:
            return await self._create_across(b, limit, fp, marker)
        keys = [
            Keys.record(b.binding_id), Keys.binder_active(pb_, b.binder_id),
            Keys.binder_all(pb_, b.binder_id), Keys.pair(pb_, b.binder_id, b.beneficiary_id),
            Keys.beneficiary_all(pe, b.beneficiary_id), Keys.payers(pe, b.beneficiary_id),
            Keys.idem(pb_, marker), Keys.order_version(pe, b.beneficiary_id),
            Keys.order_outbox(pe),
        ]  # fmt: skip
        record = orjson.dumps(b.record()).decode()
        args: list[str | int] = [
            fp, b.binding_id, record, limit, b.created_ms, IDEM_TTL_S, b.beneficiary_id,
        ]  # fmt: skip
        d = orjson.loads(await self._create(keys=keys, args=args))
        if "error" in d:
            raise DomainError(d["error"], d["message"])
        return Binding.from_record(d["binding"], int(d["priority"]))

    async def _create_across(self, b: Binding, limit: int, fp: str, marker: str) -> Binding:
        pb_, _ = provinces_of(b.binding_id)
        keys = [
            Keys.record(b.binding_id), Keys.binder_active(pb_, b.binder_id),
            Keys.binder_all(pb_, b.binder_id), Keys.pair(pb_, b.binder_id, b.beneficiary_id),
            Keys.idem(pb_, marker), Keys.views_due(pb_),
        ]  # fmt: skip
        record = orjson.dumps(b.record()).decode()
        args: list[str | int] = [fp, b.binding_id, record, limit, b.created_ms, IDEM_TTL_S]
        d = orjson.loads(await self._create_binder_side(keys=keys, args=args))
        if "error" in d:
            raise DomainError(d["error"], d["message"])
        made = Binding.from_record(d["binding"])
        priority = await self.finish_across(made)
        return Binding.from_record(d["binding"], priority)

    async def finish_across(self, b: Binding) -> int:
        """The beneficiary's side of a binding across provinces, as its record now is, then
        its mark off; the binding's priority (0 once it has ended)."""
        pb_, pe = provinces_of(b.binding_id)
        keys = [
            Keys.beneficiary_all(pe, b.beneficiary_id), Keys.payers(pe, b.beneficiary_id),
            Keys.order_version(pe, b.beneficiary_id), Keys.order_outbox(pe),
        ]  # fmt: skip
        active = int(b.status == BindingStatus.ACTIVE)
        args: list[str | int] = [b.binding_id, b.created_ms, b.beneficiary_id, active]
        priority = int(await self._beneficiary_side(keys=keys, args=args))
        await self.redis.zrem(Keys.views_due(pb_), b.binding_id)
        return priority

    async def views_due(self, province: str, before_ms: int, limit: int = 100) -> list[str]:
        key = Keys.views_due(province)
        return cast(list[str], await self.redis.zrangebyscore(key, 0, before_ms, 0, limit))

    async def end(self, binding_id: str, status: int, ended_ms: int) -> Binding | None:
        current = await self.get(binding_id)
        if current is None:
            return None
        pb_, pe = provinces_of(binding_id)
        if pb_ != pe:
            keys = [
                Keys.record(binding_id), Keys.binder_active(pb_, current.binder_id),
                Keys.pair(pb_, current.binder_id, current.beneficiary_id), Keys.views_due(pb_),
            ]  # fmt: skip
            raw = await self._end_binder_side(
                keys=keys, args=[binding_id, int(status), ended_ms, ended_ms]
            )
            if not raw:
                return None
            ended = Binding.from_record(orjson.loads(raw))
            await self.finish_across(ended)
            return ended
        keys = [
            Keys.record(binding_id), Keys.binder_active(pb_, current.binder_id),
            Keys.pair(pb_, current.binder_id, current.beneficiary_id),
            Keys.payers(pe, current.beneficiary_id),
            Keys.order_version(pe, current.beneficiary_id), Keys.order_outbox(pe),
        ]  # fmt: skip
        args: list[str | int] = [binding_id, int(status), ended_ms, current.beneficiary_id]
        raw = await self._end(keys=keys, args=args)
        return Binding.from_record(orjson.loads(raw)) if raw else None

    async def get(self, binding_id: str) -> Binding | None:
        try:
            key = Keys.record(binding_id)
        except ValueError:
            return None
        raw = await self.redis.get(key)
        if raw is None:
            return None
        b = Binding.from_record(orjson.loads(raw))
        if b.status != BindingStatus.ACTIVE:
            return b
        order = await self.payer_ids(provinces_of(binding_id)[1], b.beneficiary_id)
        if binding_id not in order:  # it ended between the two reads: read it again
            raw = await self.redis.get(key)
            return Binding.from_record(orjson.loads(raw)) if raw else None
        return Binding.from_record(orjson.loads(raw), order.index(binding_id) + 1)

    async def payer_ids(self, province: str, beneficiary: str) -> list[str]:
        return cast(list[str], await self.redis.lrange(Keys.payers(province, beneficiary), 0, -1))

    async def payers_of(self, beneficiary: str) -> list[Binding]:
        """The beneficiary's ACTIVE bindings in payer order, with priorities: two round trips
        per province (on the settlement hot path)."""
        out: list[Binding] = []
        for province in await self.provinces(beneficiary):
            order = await self.payer_ids(province, beneficiary)
            raws = await self.redis.mget([Keys.record(i) for i in order]) if order else []
            out.extend(
                Binding.from_record(orjson.loads(raw), priority)
                for priority, raw in enumerate(raws, start=1)
                if raw is not None
            )
        return [b for b in out if b.status == BindingStatus.ACTIVE]

    async def bindings_of(self, pid: str, as_binder: bool, include_inactive: bool) -> list[Binding]:
        out: list[Binding] = []
        for province in await self.provinces(pid):
            if as_binder:
                found = await self.binder_ids(province, pid, include_inactive)
            else:
                found = await self.beneficiary_ids(province, pid, include_inactive)
            out.extend(await self.many(found))
        return out

    async def many(self, binding_ids: list[str]) -> list[Binding]:
        """Bindings by id, in the order given, with their priorities."""
        found = [await self.get(i) for i in binding_ids]
        return [b for b in found if b is not None]

    async def binder_ids(self, province: str, pid: str, include_inactive: bool) -> list[str]:
        if include_inactive:
            return cast(list[str], await self.redis.zrange(Keys.binder_all(province, pid), 0, -1))
        active = await self.redis.smembers(Keys.binder_active(province, pid))
        by_time = cast(list[str], await self.redis.zrange(Keys.binder_all(province, pid), 0, -1))
        return [i for i in by_time if i in active]

    async def beneficiary_ids(self, province: str, pid: str, include_inactive: bool) -> list[str]:
        if not include_inactive:
            return await self.payer_ids(province, pid)
        key = Keys.beneficiary_all(province, pid)
        return cast(list[str], await self.redis.zrange(key, 0, -1))

    async def reorder(self, province: str, beneficiary: str, binding_ids: list[str]) -> bool:
        keys = [
            Keys.payers(province, beneficiary), Keys.order_version(province, beneficiary),
            Keys.order_outbox(province),
        ]  # fmt: skip
        return bool(await self._reorder(keys=keys, args=[beneficiary, *binding_ids]))

    async def order_of(self, beneficiary: str) -> tuple[list[Binding], dict[str, int]]:
        """The beneficiary's ACTIVE bindings in payer order, and the order's version in each
        of his provinces (their sum only grows). The versions are read first: a change in
        between yields a newer list under an older version, which that change's own push
        then replaces."""
        provinces = await self.provinces(beneficiary)
        if not provinces:
            return [], {}
        raw = await get_many(self.redis, [Keys.order_version(p, beneficiary) for p in provinces])
        versions = {p: int(v or 0) for p, v in zip(provinces, raw, strict=True)}
        return await self.payers_of(beneficiary), versions

    async def order_pushed(self, beneficiary: str, versions: dict[str, int]) -> None:
        for province, version in versions.items():
            await self._pushed(keys=[Keys.order_outbox(province)], args=[beneficiary, version])

    async def orders_pending(self, province: str, limit: int = 100) -> list[str]:
        return cast(list[str], await self.redis.zrange(Keys.order_outbox(province), 0, limit - 1))

    async def seen(self, event_id: str) -> bool:
        return bool(await self.redis.exists(f"bind:seen:{event_id}"))

    async def remember(self, event_id: str, ttl_s: int = IDEM_TTL_S) -> None:
        await self.redis.set(f"bind:seen:{event_id}", 1, ex=ttl_s)
