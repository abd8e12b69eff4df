"""The calls waiting for a ledger to move (FollowEntries, rule A10), and the one poller per
process that wakes them.

A payment's script could announce each new entry, but the payment scripts are the hot path and
their Redis commands are counted (docs/BENCHMARKS.md); a watch must not add to them. So the
waiting side looks instead: every `interval_s` one pipelined read fetches the position (`seq`)
of every account someone in this process waits on, and wakes each waiter whose account is past
the position he waits after. Nothing is read while nobody waits, and the cost grows with the
accounts watched here, not with the payments made. A waiter is woken by the level it sees, not
by a change it might have missed, so an entry written between a caller's own read and his
registration still wakes him at the next tick.

Nothing outlives its call: a waiter is registered for the length of one `wait` and removed in
its `finally`, also when the call is cancelled. `drain` (the server stopping) wakes everyone and
lets no one wait again, so long polls answer at once instead of holding up the stop.
"""

from __future__ import annotations

import asyncio
import logging

from services.account.store import AccountStore
from services.common.rpc import REDIS_UNAVAILABLE

log = logging.getLogger(__name__)

POLL_INTERVAL_S = 0.25  # an entry reaches its watcher within a second (API.md A10)


class Followers:
    def __init__(self, store: AccountStore, interval_s: float = POLL_INTERVAL_S) -> None:
        self.store, self.interval_s = store, interval_s
        # person id -> each waiter's wake-up and the position it waits after
        self._waiting: dict[str, dict[asyncio.Future[None], int]] = {}
        self._draining = False

    def waiting(self) -> int:
        """How many calls wait now (metrics, and tests that look for leaks)."""
        return sum(len(w) for w in self._waiting.values())

    async def wait(self, pid: str, after: int, timeout_s: float) -> None:
        """Until the account's ledger holds an entry past position `after`, `timeout_s` has
        passed, or the server drains; whichever comes first."""
        if self._draining or timeout_s <= 0:
            return
        woken: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiters = self._waiting.setdefault(pid, {})
        waiters[woken] = after
        try:
            await asyncio.wait([woken], timeout=timeout_s)
        finally:
            del waiters[woken]
            if not waiters and self._waiting.get(pid) is waiters:
                del self._waiting[pid]

    async def run(self) -> None:
        """The poller: a tick every `interval_s` while anyone waits."""
        while True:
            await asyncio.sleep(self.interval_s)
            if self._waiting:
                try:
                    await self.tick()
                except REDIS_UNAVAILABLE:  # the waiters time out and their callers ask again
                    log.warning("ledger positions not read: redis unavailable")

    async def tick(self) -> None:
        pids = list(self._waiting)
        for pid, position in zip(pids, await self.store.positions(pids), strict=True):
            for woken, after in self._waiting.get(pid, {}).items():
                if position is None or position > after:
                    _wake(woken)

    def drain(self) -> None:
        self._draining = True
        for waiters in self._waiting.values():
            for woken in waiters:
                _wake(woken)


def _wake(woken: asyncio.Future[None]) -> None:
    if not woken.done():
        woken.set_result(None)
