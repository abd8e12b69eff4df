"""Per-account Redis locks with owner tokens, leases and exact fencing tokens.

An account's lock is a field of its own hash (`lock`: owner token, what it is for, lease end in
the Redis server's clock), beside its fencing token (`fence`), so taking it, reading the account
and writing under it are each one script on the account's slot (lua/lock_read.lua), also under
Redis Cluster. Each taking counts the fence up by one, as a decimal string (a Lua number is a
double: past 2^53 counting would stop), and every write made under the lock names it:

    t0  A locks account X (fence 7), reads, plans
    t1  A is paused (GC, SIGSTOP, a slow network) past its lease
    t2  the lease runs out; B locks X (fence 8), reads, pays
    t3  A wakes up and writes with fence 7  ->  refused: the lock is no longer 7

Who takes over a lock whose lease ran out first finishes what it was taken for, so that nothing
the holder planned is lost or overtaken: an account operation's lock is simply taken over (its
script, one step, either ran or will be refused); a payment's lock is resolved by the payment
steps (stepwise.Stepwise.resolve): its share on this account written if its plan was journaled,
else the attempt given up for good and the lock released. Then the lock is taken.

Used by the payments under Redis Cluster (all the accounts a payment may debit, in sorted person
order, so that two families that overlap never wait on each other in a circle) and by the
account's own deductions (commercial purchase, withdrawal, transfer out) in both modes. On one
Redis a payment is one script and takes no lock: nothing interleaves with a script.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from typing import Any

from services.account.store import AccountStore, account_key, marker_key
from services.common import metrics
from services.common.backoff import Backoff
from services.common.errors import DomainError

log = logging.getLogger(__name__)

OWN = "-"  # what a lock is for when the account's own operation takes it
Resolve = Callable[[str, str, str, str], Awaitable[None]]  # (payment, person, fence, token)


@dataclasses.dataclass(frozen=True)
class Wanted:
    """An account to lock and read, with what its reader needs of it besides its fields."""

    person_id: str
    binding_id: str = ""  # read this family-aid grant (a payer's)
    year: str = ""  # read whether this premium (its mark: payment.lua) is paid (the beneficiary's)
    quota_ids: tuple[str, ...] = ()  # read these aid quotas (a funder's)


@dataclasses.dataclass(frozen=True)
class Read:
    """An account as read under its lock: None fields when there is no such account (nothing
    is locked then); `fence` the lock's fencing token."""

    fields: list[Any] | None
    fence: str = ""
    grant: str | bool = False
    year_paid: bool = False
    at_ms: int = 0
    quotas: dict[str, str | bool] = dataclasses.field(default_factory=dict)


def new_token() -> str:
    return secrets.token_hex(8)


class Locks:
    def __init__(self, store: AccountStore, lease_ms: int, resolve: Resolve | None = None) -> None:
        self.store = store
        self.lease_ms = lease_ms
        self.resolve = resolve  # stepwise.Stepwise.resolve, set when the payment steps are built

    async def read(self, wanted: Wanted, token: str = "", what: str = OWN) -> Read | dict[str, Any]:
        """One try: the account locked by `token` and read (or only read: no token); else the
        script's answer (busy, or a lock to resolve)."""
        args = ["", token, what, self.lease_ms, wanted.binding_id, wanted.year,
                " ".join(wanted.quota_ids)]  # fmt: skip
        keys = [account_key(wanted.person_id), marker_key(wanted.person_id, "-")]
        d = await self.store.call("lock_read", keys, args)
        if "busy" in d or "resolve" in d:
            return dict(d)
        if "fields" not in d:
            return Read(None)
        fence = d["fence"] if token else ""  # read only: no lock, no fence
        return Read(d["fields"], fence, d["grant"], bool(d["year_paid"]), int(d["at_ms"]),
                    d.get("quotas") or {})  # fmt: skip

    async def take(
        self, wanted: Sequence[Wanted], token: str, what: str, wait_s: float
    ) -> dict[str, Read]:
        """Every account locked and read, in sorted person order; LOCK_TIMEOUT when `wait_s`
        runs out first. On any failure (a cancel too) what this owner token took is released
        again, also a lock whose taking answered too late to be counted."""
        deadline = time.monotonic() + wait_s
        taken: dict[str, Read] = {}
        tried: list[str] = []
        try:
            with metrics.LOCK_WAIT_SECONDS.time():
                for w in sorted(wanted, key=lambda w: w.person_id):
                    tried.append(w.person_id)
                    taken[w.person_id] = await self._take_one(w, token, what, deadline)
        except BaseException:
            await asyncio.shield(self.release_owned(tried, token))
            raise
        return taken

    async def _take_one(self, w: Wanted, token: str, what: str, deadline: float) -> Read:
        backoff = Backoff(0.002, 0.05)
        while True:
            found = await self.read(w, token, what)
            if isinstance(found, Read):
                return found
            if "resolve" in found and self.resolve is not None:
                metrics.LOCK_LEASES_LOST.inc()
                await self.resolve(found["resolve"], w.person_id, found["fence"], found["token"])
                continue
            if found.get("what") == what != OWN:  # the same payment, by another of its runners
                raise Busy(what)
            left = deadline - time.monotonic()
            if left <= 0:
                metrics.LOCK_TIMEOUTS.inc()
                raise DomainError("LOCK_TIMEOUT", "an account is busy with another payment; retry")
            await asyncio.sleep(min(left, backoff.pause()))

    async def release(self, person_id: str, fence: str = "", token: str = "") -> None:
        """The lock released if it is still this one (by its fence, or by its owner token)."""
        keys = [account_key(person_id), marker_key(person_id, "-")]
        await self.store.call("unlock", keys, ["", fence, token])

    async def release_all(self, taken: dict[str, Read]) -> None:
        """Each lock taken released (by its fence), as far as Redis answers."""
        for pid, read in taken.items():
            if read.fence:
                await self._quietly(self.release(pid, fence=read.fence))

    async def release_owned(self, person_ids: Iterable[str], token: str) -> None:
        """Whatever of these accounts this owner token holds, released."""
        for pid in person_ids:
            await self._quietly(self.release(pid, token=token))

    @staticmethod
    async def _quietly(release: Awaitable[None]) -> None:
        try:
            await release
        except Exception:
            # Its lease runs out and the next taker takes it over: nothing is lost.
            log.warning("lock release failed", exc_info=True)

    @contextlib.asynccontextmanager
    async def hold(self, person_ids: Iterable[str], wait_s: float) -> AsyncIterator[LockSet]:
        """The accounts locked for one of their own operations, for as long as it runs."""
        held, token, pids = LockSet(), new_token(), sorted(set(person_ids))
        taken = await self.take([Wanted(p) for p in pids], token, OWN, wait_s)
        held.fences = {pid: r.fence for pid, r in taken.items()}
        try:
            yield held
        finally:
            # A deadline may cancel the handler here: finish the release regardless.
            await asyncio.shield(self.release_owned(pids, token))


class Busy(Exception):
    """The lock is held for the same payment, by another of its runners (a retry meets the
    locks of the attempt it retries): its journal, if it has one, is to be finished, not
    waited for."""

    def __init__(self, payment_id: str) -> None:
        super().__init__(payment_id)
        self.payment_id = payment_id


@dataclasses.dataclass
class LockSet:
    """What an account operation holds: the fencing token of each account's lock, which its
    script checks is still the account's (lib.lua `refuse_fence`)."""

    fences: dict[str, str] = dataclasses.field(default_factory=dict)
