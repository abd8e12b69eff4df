"""Every Redis key and script of the binding service.

Keys carry a province hash tag: the binding record and the binder's views under the binder's
province, the beneficiary's views under the beneficiary's. A person's views in a province are one
hash (Keys.person); a record is a JSON array (domain.RECORD). Under the default policy (B5) both
people are in one province, so one script updates both views atomically on one shard; across two
provinces (a profile without B5) the two sides are two steps, finished by the relay loop if cut
off. Each person's provinces (`bind:where:{<person_id>}`) are recorded before that script, so a
binding is never left where its people's views cannot find it. The binding id names both
provinces, so any binding can be found from its id alone.
"""

from __future__ import annotations

import pathlib
import secrets
from typing import cast

import orjson
import redis.asyncio as aioredis

from services.binding.domain import RECORD, Binding, Views
from services.common.enums import BindingStatus, lua_constants
from services.common.errors import DomainError
from services.common.redisdb import get_many

IDEM_TTL_S = 7 * 24 * 3600

# Each person's views in a province are one hash (Keys.person), so that a person's bindings cost
# one small key, not seven:
#   a:<binding id>      created ms   every binding he made (his history as binder)
#   pair:<beneficiary>  binding id   his ACTIVE binding of that beneficiary (B7); these are his
#                                    active bindings as binder, counted against his limit (B4)
#   e:<binding id>      created ms   every binding of which he is the beneficiary (his history)
#   q:<binding id>      its priority: his ACTIVE bindings as beneficiary, his payer list (1..n)
#   v                   the payer list's version
#   w:<binding id>      created ms   a binding made for him that awaits his consent (B14): in his
#                                    history, not on his payer list; the binder holds its pair
#   fq:<quota id>       grant seq    every aid quota he granted (N1; services.binding.quotas)
#   rq:<quota id>       seq state    every aid quota granted to him, with how far his side has
#                                    seen it (0 pending, 1 ACTIVE, 2 ENDED)
#   g:<quota id>        seq funder   his ACTIVE quotas: drawn before his payers (N3), pushed with
#                                    his payer order (its version `v` counts both)
# (one field per payer, not one list: a value over 64 bytes would take the hash out of Redis's
# compact encoding, at two to three times the bytes).
# Every change of a beneficiary's payer list also bumps its version and marks it in the
# province's order outbox (`order-pending`), in the same script: the new order then reaches the
# account service (SetFamilyAidOrder) at once, or from the relay loop if that push failed.
# A binding awaiting consent is also listed, with the time it lapses, in its binder's
# province's `consent-due` index (services.binding.consent sweeps it).
_LUA = pathlib.Path(__file__).with_name("lua")
# What every script but the bare ones starts with: the enum's constants, the places of a
# record's fields in its array (domain.RECORD), and lua/lib.lua's functions.
LUA_HEAD = (
    lua_constants(BindingStatus)
    + f"""
local RECORD_STATUS, RECORD_ENDED_MS = {RECORD.index("status") + 1}, {RECORD.index("ended_ms") + 1}
local RECORD_CREATED_MS = {RECORD.index("created_ms") + 1}
"""
    + (_LUA / "lib.lua").read_text()
)


def script(name: str, head: bool = True) -> str:
    """The source of lua/<name>.lua (each starts with its KEYS, ARGV and what it returns), after
    the shared head unless `head` is false (a script that needs none of it)."""
    return (LUA_HEAD if head else "") + (_LUA / f"{name}.lua").read_text()


# How the beneficiary's side (lua/beneficiary_side.lua) takes a binding of each status; any other
# has ended ('0').
_SIDES: dict[int, int] = {BindingStatus.ACTIVE: 1, BindingStatus.PENDING_CONSENT: 2}


def province_tag(province: str) -> str:
    return f"bind:{{{province}}}"


def new_binding_id(binder_province: str, beneficiary_province: str) -> str:
    return f"B{binder_province}{beneficiary_province}{secrets.token_hex(8)}"


def _made(b: Binding, answer: dict[str, object]) -> str:
    """The id of the binding a creation answers: its own, or, when its request made one
    before (an attempt cut off after this step, retried), that one's."""
    return str(answer.get("id") or b.binding_id)


def provinces_of(binding_id: str) -> tuple[str, str]:
    """Binder's and beneficiary's province from a binding id; ValueError if it is not ours."""
    if len(binding_id) != 21 or not binding_id.startswith("B") or not binding_id[1:5].isdigit():
        raise ValueError(binding_id)
    return binding_id[1:3], binding_id[3:5]


def quota_provinces(quota_id: str) -> tuple[str, str]:
    """The funder's and the relative's province from a quota id (services.binding.quotas);
    ValueError if it is not ours."""
    if len(quota_id) != 21 or not quota_id.startswith("Q") or not quota_id[1:5].isdigit():
        raise ValueError(quota_id)
    return quota_id[1:3], quota_id[3:5]


class Keys:
    @staticmethod
    def where(pid: str) -> str:
        return f"bind:where:{{{pid}}}"

    @staticmethod
    def record(binding_id: str) -> str:
        return f"{province_tag(provinces_of(binding_id)[0])}:rec:{binding_id}"

    @staticmethod
    def person(province: str, pid: str) -> str:
        """A person's views in a province: one hash (the fields are listed at the top)."""
        return f"{province_tag(province)}:p:{pid}"

    @staticmethod
    def idem(province: str, key: str) -> str:
        return f"{province_tag(province)}:idem:{key}"

    @staticmethod
    def order_outbox(province: str) -> str:
        return f"{province_tag(province)}:order-pending"

    @staticmethod
    def views_due(province: str) -> str:
        """Bindings from this province to another whose beneficiary's side is still due, and
        aid quotas granted here whose two sides are being brought together
        (services.binding.quotas: their ids begin with Q)."""
        return f"{province_tag(province)}:views-due"

    @staticmethod
    def void(binding_id: str) -> str:
        """The mark of a binding id whose creation was given up (Lifecycle.grants)."""
        return f"{province_tag(provinces_of(binding_id)[0])}:void:{binding_id}"

    @staticmethod
    def grants_due(n: int) -> str:
        """The n-th part of the index of grants written for bindings being made."""
        return f"bind:{{grants:{n}}}:due"

    @staticmethod
    def revokes_due(province: str) -> str:
        """Bindings of this binder province ended (marked in the script that ended them)
        whose grant is still to be revoked (Lifecycle.revokes), scored by the time of the mark
        on the marks' clock."""
        return f"{province_tag(province)}:revokes-due"

    @staticmethod
    def quota(quota_id: str) -> str:
        """A quota's record (services.binding.quotas), under its funder's province."""
        return f"{province_tag(quota_provinces(quota_id)[0])}:quota:{quota_id}"

    @staticmethod
    def consent_due(province: str) -> str:
        """Bindings made in this province (the binder's) and aid quotas granted here that
        await consent, scored by the time they lapse unconfirmed (B14)."""
        return f"{province_tag(province)}:consent-due"


class BindingStore:
    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis
        self._create = redis.register_script(script("create"))
        self._end = redis.register_script(script("end"))
        self._reorder = redis.register_script(script("reorder"))
        self._create_binder_side = redis.register_script(script("create_binder_side"))
        self._end_binder_side = redis.register_script(script("end_binder_side"))
        self._beneficiary_side = redis.register_script(script("beneficiary_side"))
        self._void = redis.register_script(script("void", head=False))

    async def provinces(self, pid: str) -> list[str]:
        """The provinces under which this person has binding views (one, unless he moved)."""
        return sorted(cast(set[str], await self.redis.smembers(Keys.where(pid))))

    async def views(self, province: str, pid: str) -> Views:
        fields = await self.redis.hgetall(Keys.person(province, pid))
        return Views.parse(cast(dict[str, str], fields))

    async def create(
        self, b: Binding, limit: int, fp: str, marker: str, lapses_ms: int = 0
    ) -> Binding:
        """The binding and both people's views in one script. Each person's provinces are
        recorded first (each under his own hash tag, so not in that script): should the script
        then refuse or never run, a province is listed where nothing is found, which readers
        pass over; never a view that cannot be found. A binding awaiting consent (B14) gives
        `lapses_ms`, when it lapses unconfirmed."""
        pb_, pe = provinces_of(b.binding_id)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.sadd(Keys.where(b.binder_id), pb_)
            pipe.sadd(Keys.where(b.beneficiary_id), pe)
            await pipe.execute()
        if pb_ != pe:
            return await self._create_across(b, limit, fp, marker, lapses_ms)
        keys = [
            Keys.record(b.binding_id), Keys.person(pb_, b.binder_id),
            Keys.person(pe, b.beneficiary_id), Keys.idem(pb_, marker), Keys.order_outbox(pe),
            Keys.consent_due(pb_), Keys.void(b.binding_id),
        ]  # fmt: skip
        record = orjson.dumps(b.record()).decode()
        args: list[str | int] = [
            fp, b.binding_id, record, limit, b.created_ms, IDEM_TTL_S, b.beneficiary_id,
            lapses_ms,
        ]  # fmt: skip
        d = orjson.loads(await self._create(keys=keys, args=args))
        if "error" in d:
            raise DomainError(d["error"], d["message"])
        return Binding.from_record(_made(b, d), d["binding"], int(d["priority"]))

    async def _create_across(
        self, b: Binding, limit: int, fp: str, marker: str, lapses_ms: int
    ) -> Binding:
        pb_, _ = provinces_of(b.binding_id)
        keys = [
            Keys.record(b.binding_id), Keys.person(pb_, b.binder_id), Keys.idem(pb_, marker),
            Keys.views_due(pb_), Keys.consent_due(pb_), Keys.void(b.binding_id),
        ]  # fmt: skip
        record = orjson.dumps(b.record()).decode()
        args: list[str | int] = [
            fp, b.binding_id, record, limit, b.created_ms, IDEM_TTL_S, b.beneficiary_id,
            lapses_ms,
        ]  # fmt: skip
        d = orjson.loads(await self._create_binder_side(keys=keys, args=args))
        if "error" in d:
            raise DomainError(d["error"], d["message"])
        made = Binding.from_record(_made(b, d), d["binding"])
        priority = await self.finish_across(made)
        return Binding.from_record(made.binding_id, d["binding"], priority)

    async def void(self, binding_id: str) -> bool:
        """The binding id marked void unless its binding exists; whether it was."""
        keys = [Keys.record(binding_id), Keys.void(binding_id)]
        return str(await self._void(keys=keys, args=[IDEM_TTL_S])) == "void"

    async def finish_across(self, b: Binding) -> int:
        """The beneficiary's side of a binding across provinces, as its record now is, then
        its mark off; the binding's priority (0 once it has ended)."""
        pb_, pe = provinces_of(b.binding_id)
        keys = [Keys.person(pe, b.beneficiary_id), Keys.order_outbox(pe)]
        side = _SIDES.get(b.status, 0)
        args: list[str | int] = [b.binding_id, b.created_ms, b.beneficiary_id, side]
        priority = int(await self._beneficiary_side(keys=keys, args=args))
        await self.redis.zrem(Keys.views_due(pb_), b.binding_id)
        return priority

    async def views_due(self, province: str, before_ms: int, limit: int = 100) -> list[str]:
        """The bindings across provinces of this binder province still marked (the sweep's
        view: services.binding.lifecycle)."""
        key = Keys.views_due(province)
        return cast(list[str], await self.redis.zrangebyscore(key, 0, before_ms, 0, limit))

    async def end(
        self, binding_id: str, status: int, ended_ms: int, only_pending: bool = False,
        marked_ms: int | None = None,
    ) -> Binding | None:  # fmt: skip
        """End an ACTIVE binding or one awaiting consent (only the latter if `only_pending`);
        any other is returned unchanged; None if there is no such binding. Its marks (its
        grant to revoke; across provinces, its other side) are scored `marked_ms`, on the
        marks' own clock (Lifecycle), else `ended_ms`."""
        marked = ended_ms if marked_ms is None else marked_ms
        current = await self.get(binding_id)
        if current is None:
            return None
        pb_, pe = provinces_of(binding_id)
        binder, beneficiary = current.binder_id, current.beneficiary_id
        which = "pending" if only_pending else "any"
        if pb_ != pe:
            keys = [
                Keys.record(binding_id), Keys.person(pb_, binder), Keys.views_due(pb_),
                Keys.consent_due(pb_), Keys.revokes_due(pb_),
            ]  # fmt: skip
            raw = await self._end_binder_side(
                keys=keys, args=[binding_id, int(status), ended_ms, marked, beneficiary, which]
            )
            if not raw:
                return None
            ended = Binding.from_record(binding_id, orjson.loads(raw))
            await self.finish_across(ended)
            return ended
        keys = [
            Keys.record(binding_id), Keys.person(pb_, binder), Keys.person(pe, beneficiary),
            Keys.order_outbox(pe), Keys.consent_due(pb_), Keys.revokes_due(pb_),
        ]  # fmt: skip
        args: list[str | int] = [binding_id, int(status), ended_ms, beneficiary, which, marked]
        raw = await self._end(keys=keys, args=args)
        return Binding.from_record(binding_id, orjson.loads(raw)) if raw else None

    async def get(self, binding_id: str) -> Binding | None:
        try:
            key = Keys.record(binding_id)
        except ValueError:
            return None
        raw = await self.redis.get(key)
        if raw is None:
            return None
        b = Binding.from_record(binding_id, orjson.loads(raw))
        if b.status != BindingStatus.ACTIVE:
            return b
        order = await self.payer_ids(provinces_of(binding_id)[1], b.beneficiary_id)
        if binding_id not in order:  # it ended between the two reads: read it again
            raw = await self.redis.get(key)
            return Binding.from_record(binding_id, orjson.loads(raw)) if raw else None
        return Binding.from_record(binding_id, orjson.loads(raw), order.index(binding_id) + 1)

    async def payer_ids(self, province: str, beneficiary: str) -> list[str]:
        return (await self.views(province, beneficiary)).payers

    async def payers_of(self, beneficiary: str) -> list[Binding]:
        """The beneficiary's ACTIVE bindings in payer order, with priorities."""
        return (await self.order_of(beneficiary))[0]

    async def bindings_of(self, pid: str, as_binder: bool, include_inactive: bool) -> list[Binding]:
        out: list[Binding] = []
        for province in await self.provinces(pid):
            v = await self.views(province, pid)
            if as_binder:
                active = v.binder_active
                found = v.binder_all if include_inactive else [
                    i for i in v.binder_all if i in active
                ]  # fmt: skip
            else:
                found = v.beneficiary_all if include_inactive else [*v.payers, *v.awaiting]
            out.extend(await self.many(found))
        return out

    async def many(self, binding_ids: list[str]) -> list[Binding]:
        """Bindings by id, in the order given, with their priorities."""
        found = [await self.get(i) for i in binding_ids]
        return [b for b in found if b is not None]

    async def reorder(self, province: str, beneficiary: str, binding_ids: list[str]) -> bool:
        keys = [Keys.person(province, beneficiary), Keys.order_outbox(province)]
        return bool(await self._reorder(keys=keys, args=[beneficiary, *binding_ids]))

    async def order_of(
        self, beneficiary: str
    ) -> tuple[list[Binding], dict[str, int], list[tuple[str, str]]]:
        """The beneficiary's ACTIVE bindings in payer order, with priorities, the order's
        version in each of his provinces (their sum only grows), and his ACTIVE aid quotas
        (funder, quota id), oldest first: each province's lists and its version read together
        (one hash), then the records it names; two round trips per province."""
        out: list[Binding] = []
        versions: dict[str, int] = {}
        drawn: list[tuple[int, str, str]] = []
        for province in await self.provinces(beneficiary):
            v = await self.views(province, beneficiary)
            versions[province] = v.version
            drawn += v.drawn
            raws = await get_many(self.redis, [Keys.record(i) for i in v.payers])
            out.extend(
                Binding.from_record(i, orjson.loads(raw), priority)
                for priority, (i, raw) in enumerate(zip(v.payers, raws, strict=True), start=1)
                if raw is not None
            )
        quotas = [(funder, quota_id) for _, funder, quota_id in sorted(drawn)]
        return [b for b in out if b.status == BindingStatus.ACTIVE], versions, quotas

    async def seen(self, event_id: str) -> bool:
        return bool(await self.redis.exists(f"bind:seen:{event_id}"))

    async def remember(self, event_id: str, ttl_s: int = IDEM_TTL_S) -> None:
        await self.redis.set(f"bind:seen:{event_id}", 1, ex=ttl_s)
