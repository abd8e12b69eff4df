"""Every Redis key and script of the settlement service: the journal, the key index, the
recovery queue and the consumption-record indexes."""

from __future__ import annotations

import json
from typing import Any, cast

import redis.asyncio as aioredis

PENDING, SETTLED, CANCELLED, ABORTED, COMMITTING = 2, 3, 4, 5, 6
RECOVERY = "setl:recovery"
TOMBSTONE = "REVERSED"

# KEYS[1] journal; ARGV[1] expected status, ARGV[2] new journal JSON.
# The journal's decisions are compare-and-set: an owner and a sweeper can never both decide.
_TRANSITION = """
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
if tostring(cjson.decode(raw).status) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
return 1
"""
# KEYS[1] key index; ARGV[1] value to delete only if still there.
_UNCLAIM = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def journal_key(sid: str) -> str:
    return f"setl:j:{sid}"


def index_key(institution_id: str, medins_setl_id: str) -> str:
    return f"setl:key:{institution_id}:{medins_setl_id}"


class SettlementStore:
    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis
        self._transition = redis.register_script(_TRANSITION)
        self._unclaim = redis.register_script(_UNCLAIM)

    async def claim(self, institution_id: str, medins_setl_id: str, value: str) -> str | None:
        """Take the settlement key; the value already there if another request has it."""
        key = index_key(institution_id, medins_setl_id)
        if await self.redis.set(key, value, nx=True):
            return None
        return cast(str | None, await self.redis.get(key))

    async def unclaim(self, institution_id: str, medins_setl_id: str, value: str) -> None:
        await self._unclaim(keys=[index_key(institution_id, medins_setl_id)], args=[value])

    async def tombstone(self, institution_id: str, medins_setl_id: str) -> str | None:
        return await self.claim(institution_id, medins_setl_id, TOMBSTONE)

    async def save(self, journal: dict[str, Any]) -> None:
        await self.redis.set(journal_key(journal["settlement_id"]), json.dumps(journal))

    async def transition(self, journal: dict[str, Any], expected: int) -> bool:
        keys = [journal_key(journal["settlement_id"])]
        return bool(await self._transition(keys=keys, args=[expected, json.dumps(journal)]))

    async def load(self, sid: str) -> dict[str, Any] | None:
        raw = await self.redis.get(journal_key(sid))
        return json.loads(raw) if raw else None

    async def recover_later(self, sid: str, due_ms: int) -> None:
        await self.redis.zadd(RECOVERY, {sid: due_ms})

    async def recovered(self, sid: str) -> None:
        await self.redis.zrem(RECOVERY, sid)

    async def due(self, now_ms: int) -> list[str]:
        return cast(list[str], await self.redis.zrangebyscore(RECOVERY, 0, now_ms, 0, 50))

    async def claim_sweep(self, sid: str, owner: str, ttl_ms: int) -> bool:
        return bool(await self.redis.set(f"setl:sweep:{sid}", owner, nx=True, px=ttl_ms))

    async def index(self, journal: dict[str, Any]) -> None:
        """Consumption records (S13): by patient, and by each family payer."""
        sid, at = journal["settlement_id"], journal["settled_ms"]
        await self.redis.zadd(f"setl:by-patient:{journal['patient_id']}", {sid: at})
        for leg in journal["legs"]:
            if leg["kind"] == 2:
                await self.redis.zadd(f"setl:by-payer:{leg['payer_id']}", {sid: at})

    async def listed(
        self, by: str, pid: str, start_ms: int, end_ms: int, offset: int, size: int
    ) -> list[str]:
        """Settlement ids newest first with settled_at in [start, end)."""
        key = f"setl:by-{by}:{pid}"
        return cast(
            list[str],
            await self.redis.zrevrangebyscore(key, f"({end_ms}", start_ms, offset, size),
        )

    async def premium_paid(self, beneficiary: str, year: int, payment_id: str) -> str | None:
        """Claim the one premium payment of a beneficiary's year (A2); the holder if taken."""
        key = f"setl:premium:{beneficiary}:{year}"
        if await self.redis.set(key, payment_id, nx=True):
            return None
        return cast(str | None, await self.redis.get(key))

    async def premium_unclaim(self, beneficiary: str, year: int, payment_id: str) -> None:
        await self._unclaim(keys=[f"setl:premium:{beneficiary}:{year}"], args=[payment_id])
