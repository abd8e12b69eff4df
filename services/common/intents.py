"""Durable intents: "mark it, then sweep it later", written once.

A change that must be followed by more work (an account event to publish, a payment in steps
to finish, a payer order to push, a binding's other side to write) leaves a mark first: a
member of a sorted set, in the same script as the change or before it. Whoever makes the change
does the follow-up at once and clears the mark; a sweep finishes every mark still there, so a
crash, a cancelled caller or a Redis blip leaves nothing undone. A mark is kept on one of a few
keys (its bucket: by a spread of the member, or by province), each on a slot of its own under
Redis Cluster.

A mark's score says when it is due: a time (ms) — due `due_after_ms` later, for work its maker
is still expected to finish, or at once past a deadline that is its score (`due_after_ms=0`) —
or a number that only grows (a counter, a version) — due at once, and cleared only up to the
number the work covered (`clear(..., upto=n)`), so that a change marked again meanwhile stays
marked. A mark whose work fails is tried again with back-off.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import cast

import redis.asyncio as aioredis

from services.common import metrics
from services.common.backoff import Backoff
from services.common.redisdb import spread

log = logging.getLogger(__name__)

# KEYS[1] a bucket; ARGV[1] member, ARGV[2] the highest score the work covered. Clears the mark
# only if it was not marked again with a higher score since.
_CLEAR_UPTO = """
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if score and tonumber(score) <= tonumber(ARGV[2]) then redis.call('ZREM', KEYS[1], ARGV[1]) end
return 0
"""
# KEYS[1] a bucket's counter, KEYS[2] the bucket; ARGV[1] member. Marks it with a fresh number.
_MARK_NUMBERED = """
local n = redis.call('INCR', KEYS[1])
redis.call('ZADD', KEYS[2], n, ARGV[1])
return n
"""

Finish = Callable[[str, str], Awaitable[int | None]]  # (bucket, member) -> work done, for metrics


def now_ms() -> int:
    return int(time.time() * 1000)


class Intents:
    """The marks of one kind of work over its buckets, and their sweep.

    `buckets`: the keys of the sorted sets; `finish(bucket, member)` does the work of one mark
    and clears it; `due_after_ms`: None for marks numbered by a counter or a version (due at
    once), else how long after its time a mark is due; `now`: the clock of the times (ms), the
    process's unless the service keeps one. `label` names the work in the metrics."""

    def __init__(
        self, redis: aioredis.Redis, buckets: Sequence[str], finish: Finish, *, label: str,
        due_after_ms: int | None = None, interval_s: float = 1.0, batch: int = 100,
        pending_label: str = "", now: Callable[[], int] | None = None,
    ) -> None:  # fmt: skip
        self.redis, self.buckets, self.finish = redis, list(buckets), finish
        self.now = now or now_ms
        self.label, self.pending_label = label, pending_label
        self.due_after_ms, self.interval_s, self.batch = due_after_ms, interval_s, batch
        self._clear_upto = redis.register_script(_CLEAR_UPTO)
        self._mark_numbered = redis.register_script(_MARK_NUMBERED)
        self._retry_at: dict[str, float] = {}
        self._backoff: dict[str, Backoff] = {}

    # -- marking and clearing (the maker's side) -------------------------------------------
    def bucket(self, member: str) -> str:
        """The bucket of a member, for intents spread over their buckets by member."""
        return self.buckets[spread(member, len(self.buckets))]

    async def mark(self, member: str, at_ms: int | None = None) -> None:
        """Marked with a time: due `due_after_ms` after it."""
        await self.redis.zadd(self.bucket(member), {member: self.now() if at_ms is None else at_ms})

    async def mark_numbered(self, member: str, counter: str) -> int:
        """Marked with the next number of `counter` (a key in the member's bucket's slot)."""
        return int(await self._mark_numbered(keys=[counter, self.bucket(member)], args=[member]))

    async def clear(self, member: str, bucket: str | None = None, upto: int | None = None) -> None:
        """The mark off; with `upto`, only if its score is no higher (not marked again since)."""
        key = bucket or self.bucket(member)
        if upto is None:
            await self.redis.zrem(key, member)
        else:
            await self._clear_upto(keys=[key], args=[member, upto])

    # -- sweeping --------------------------------------------------------------------------
    async def due(self, bucket: str) -> list[str]:
        """The marks of a bucket that are due now, oldest first, at most a batch."""
        top = "+inf" if self.due_after_ms is None else self.now() - self.due_after_ms
        found = await self.redis.zrangebyscore(bucket, "-inf", top, 0, self.batch)
        return cast(list[str], found)

    async def sweep(self) -> int:
        """One pass over every bucket: each due mark's work done (or tried again later).
        Returns how many marks were due."""
        seen: set[str] = set()
        for bucket in self.buckets:
            for member in await self.due(bucket):
                seen.add(member)
                if self._retry_at.get(member, 0.0) > time.monotonic():
                    continue
                await self._finish_one(bucket, member)
        for gone in self._retry_at.keys() - seen:  # finished by someone else meanwhile
            self._retry_at.pop(gone, None)
            self._backoff.pop(gone, None)
        if self.pending_label:
            metrics.OUTBOX_PENDING.labels(self.pending_label).set(len(seen))
        return len(seen)

    async def _finish_one(self, bucket: str, member: str) -> None:
        try:
            done = await self.finish(bucket, member)
        except Exception:
            backoff = self._backoff.setdefault(member, Backoff(self.interval_s, 60.0))
            self._retry_at[member] = time.monotonic() + backoff.pause()
            log.warning("%s deferred", self.label, exc_info=True)
            return
        self._retry_at.pop(member, None)
        self._backoff.pop(member, None)
        metrics.RELAYED_LATE.labels(self.label).inc(1 if done is None else done)

    async def run(self) -> None:
        """Sweeps for ever, a pass every `interval_s`."""
        while True:
            try:
                await self.sweep()
            except Exception:  # Redis away: the marks wait, the next pass tries again
                log.warning("%s sweep failed", self.label, exc_info=True)
            await asyncio.sleep(self.interval_s)
