"""Per-account Redis locks with owner tokens, leases and fencing tokens.

One lock per account: `lock:{<person_id>}` holds the owner's random token with a lease (PX);
`lock:{<person_id>}:fence` is a counter bumped by the same script that takes the lock, so every
owner gets a fencing token higher than any before it, and higher than any the account has
accepted (a caller of PlaceHolds may have passed a token of its own). The lock, its fence and
the account share the hash tag, so they live in the account service's Redis, on one shard.

Why fencing as well as a lease: a lease only says who *should* own the lock. A timeline:

    t0  A locks account X (fence 7), starts planning
    t1  A is paused (GC, SIGSTOP, a slow network) past its lease
    t2  the lease runs out; B locks X (fence 8), places holds with fence 8, commits
    t3  A wakes up and places a hold with fence 7  ->  refused, STALE_FENCING_TOKEN

The account service remembers the highest fence it has seen per account and refuses lower ones,
so a holder that lost its lease can never act on what it read before losing it.

Locks are taken in sorted order (no deadlock between families that overlap), waiting at most
`wait_s` overall; the lease is extended every third of itself while the holder works, and release
deletes the key only while it still holds our token.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import secrets
import time
from collections.abc import AsyncIterator, Iterable

import redis.asyncio as aioredis

from services.account.store import account_key
from services.common import metrics
from services.common.backoff import Backoff
from services.common.errors import DomainError

log = logging.getLogger(__name__)

# KEYS[1] lock key, KEYS[2] fence counter, KEYS[3] the account; ARGV[1] owner token, ARGV[2]
# lease ms. Returns the new fencing token, or 0 when another owner holds the lock.
_ACQUIRE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local seen = tonumber(redis.call('HGET', KEYS[3], 'fence')) or 0
local fence = math.max(tonumber(redis.call('GET', KEYS[2])) or 0, seen) + 1
redis.call('SET', KEYS[2], string.format('%d', fence))
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return fence
"""
# KEYS[1] lock key; ARGV[1] owner token, ARGV[2] lease ms. Returns 1 if still ours, else 0.
_EXTEND = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
# KEYS[1] lock key; ARGV[1] owner token. Deletes only our own lock. Returns 1 if deleted.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def lock_key(person_id: str) -> str:
    return f"lock:{{{person_id}}}"


def fence_key(person_id: str) -> str:
    return f"lock:{{{person_id}}}:fence"


@dataclasses.dataclass
class LockSet:
    """What a holder owns: a fencing token per account, and whether any lease was lost."""

    owner: str
    fences: dict[str, int] = dataclasses.field(default_factory=dict)
    lost: bool = False

    def check(self) -> None:
        """Before acting on what was read under the locks: refuse if a lease ran out."""
        if self.lost:
            raise DomainError("LOCK_TIMEOUT", "the account lock was lost meanwhile; retry")


class Locks:
    def __init__(self, redis: aioredis.Redis, lease_ms: int) -> None:
        self._redis = redis
        self.lease_ms = lease_ms
        self._acquire = redis.register_script(_ACQUIRE)
        self._extend = redis.register_script(_EXTEND)
        self._release = redis.register_script(_RELEASE)

    @contextlib.asynccontextmanager
    async def hold(self, person_ids: Iterable[str], wait_s: float) -> AsyncIterator[LockSet]:
        """Lock every account, in sorted order; LOCK_TIMEOUT when `wait_s` runs out first."""
        held = LockSet(owner=secrets.token_hex(16))
        try:
            with metrics.LOCK_WAIT_SECONDS.time():
                await self._acquire_all(sorted(set(person_ids)), held, wait_s)
            await self._extend_all(held)  # a lease may have run out while we waited for the next
            held.check()
            keeper = asyncio.create_task(self._keep(held))
            try:
                yield held
            finally:
                keeper.cancel()
        finally:
            # A deadline may cancel the handler here: finish the release regardless.
            await asyncio.shield(self._release_all(held))

    async def _acquire_all(self, ids: list[str], held: LockSet, wait_s: float) -> None:
        deadline = time.monotonic() + wait_s
        for pid in ids:
            backoff = Backoff(0.002, 0.05)
            while True:
                keys = [lock_key(pid), fence_key(pid), account_key(pid)]
                fence = int(await self._acquire(keys=keys, args=[held.owner, self.lease_ms]))
                if fence:
                    held.fences[pid] = fence
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    metrics.LOCK_TIMEOUTS.inc()
                    raise DomainError(
                        "LOCK_TIMEOUT", "an account is busy with another payment; retry"
                    )
                await asyncio.sleep(min(left, backoff.pause()))

    async def _keep(self, held: LockSet) -> None:
        """Extend every lease each third of a lease while the holder works."""
        while True:
            await asyncio.sleep(self.lease_ms / 3000)
            try:
                await self._extend_all(held)
            except Exception:
                # Redis unreachable: the fencing check protects the money; keep trying.
                log.warning("lock lease extension failed", exc_info=True)

    async def _extend_all(self, held: LockSet) -> None:
        for pid in held.fences:
            ok = await self._extend(keys=[lock_key(pid)], args=[held.owner, self.lease_ms])
            if not int(ok) and not held.lost:
                held.lost = True
                metrics.LOCK_LEASES_LOST.inc()
                log.warning("lock lease lost", extra={"fields": {"person_id": pid}})

    async def _release_all(self, held: LockSet) -> None:
        for pid in held.fences:
            try:
                await self._release(keys=[lock_key(pid)], args=[held.owner])
            except Exception:
                # The lease runs out by itself; nothing is lost by leaving it.
                log.exception("lock release failed", extra={"fields": {"person_id": pid}})
