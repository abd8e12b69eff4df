"""WatchPayments (rule A10): a person's payment entries as they happen, as a stream that a
cursor resumes.

The account service owns the ledger; this stream only asks it, over and over, for the entries
past the last position it sent (FollowEntries, a long poll of at most FOLLOW_WAIT_MS), and turns
each into a PaymentEvent whose cursor is that entry's position. So the stream keeps nothing but
its position: a caller who resumes after an event's cursor, on this replica or another, after a
restart or days later, gets the next entry of the ledger and every one after it, each once. The
ledger is kept for good, so every cursor stays good (CURSOR_EXPIRED is never answered).

The response headers are sent once the start is fixed (the account's position at the call, or
the cursor's, checked): what happens after them is in the stream, and their `gongji-cursor` is
the cursor of that start, so a caller cut off before the first event resumes from there without
a gap. An account service that does not answer for a moment (its restart, Redis away) is asked
again, for up to PEER_RETRY_S. So the stream ends only when the caller cancels it (the long poll
under way is cancelled with it), when this server drains (UNAVAILABLE/SERVER_DRAINING), or when
the account service stays away (UNAVAILABLE/DEPENDENCY_UNAVAILABLE); either way the caller
resumes with the last cursor, on another replica or this one restarted.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import grpc

from gongji.account.v1 import account_pb2 as apb
from gongji.settlement.v1 import settlement_pb2 as pb
from services.common.backoff import Backoff
from services.common.errors import DomainError
from services.common.rpc import reason_of
from services.settlement import cursor
from services.settlement.convert import payment_event_pb
from services.settlement.coordinator import Coordinator

Context = Any  # grpc.aio.ServicerContext, untyped

FOLLOW_WAIT_MS = 15_000  # each long poll; the account service allows up to 20 s
FOLLOW_LIMIT = 100  # ledger entries read per poll
_PEER_SLACK_S = 5.0  # a poll's deadline beyond its wait: the account service answers by then
PEER_RETRY_S = 30.0  # how long a stream rides out an account service that does not answer
_FIRST_PAUSE_S, _MAX_PAUSE_S = 0.1, 2.0
_AGAIN = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
T = TypeVar("T")


class WatchMethods:
    coordinator: Coordinator
    draining: asyncio.Event  # set when this server begins to drain
    _pid: Callable[[str, str], str]  # a valid person id (SettlementServicer)

    async def WatchPayments(
        self, request: pb.WatchPaymentsRequest, context: Context
    ) -> AsyncIterator[pb.PaymentEvent]:
        pid = self._pid(request.person_id, "person_id")
        after = cursor.position(request.cursor, pid) if request.cursor else None
        answer = await self._start(pid, after)
        start = answer.position if after is None else after
        await context.send_initial_metadata(((cursor.START_HEADER, cursor.cursor(pid, start)),))
        while True:
            for followed in answer.entries:
                yield payment_event_pb(pid, followed)
            answer = await self._next(pid, answer.position)

    async def _start(self, pid: str, after: int | None) -> apb.FollowEntriesResponse:
        """The first read, at once: the account exists, the cursor lies within its ledger, and
        the position to follow from (with what already follows a cursor)."""
        try:
            return await self.coordinator.accounts.follow(pid, after, 0, FOLLOW_LIMIT,
                                                          _PEER_SLACK_S)  # fmt: skip
        except grpc.aio.AioRpcError as e:
            if reason_of(e) == "INVALID_ARGUMENT":  # `after` beyond the ledger's end
                raise DomainError(
                    "INVALID_ARGUMENT", "cursor lies past the end of this person's ledger"
                ) from None
            raise

    async def _next(self, pid: str, after: int) -> apb.FollowEntriesResponse:
        """The entries past `after`, once there are any (or the poll's wait is over). An
        account service that does not answer (a restart, Redis away for a moment) is asked
        again for up to PEER_RETRY_S before the stream gives up; a drain of this server ends
        the wait at once."""
        timeout_s = FOLLOW_WAIT_MS / 1000 + _PEER_SLACK_S
        give_up: float | None = None  # PEER_RETRY_S from the first failure
        backoff = Backoff(_FIRST_PAUSE_S, _MAX_PAUSE_S)
        while True:
            poll = self.coordinator.accounts.follow(
                pid, after, FOLLOW_WAIT_MS, FOLLOW_LIMIT, timeout_s
            )
            try:
                return await self._unless_draining(poll)
            except grpc.aio.AioRpcError as e:
                give_up = give_up or time.monotonic() + PEER_RETRY_S
                pause = backoff.pause()
                if e.code() not in _AGAIN or time.monotonic() + pause > give_up:
                    raise
            await self._unless_draining(asyncio.sleep(pause))

    async def _unless_draining(self, work: Awaitable[T]) -> T:
        """`work`'s result, unless this server begins to drain first (SERVER_DRAINING). When
        the caller cancels, the work is cancelled with him: no poll outlives its stream."""
        done = asyncio.ensure_future(work)
        drained = asyncio.ensure_future(self.draining.wait())
        try:
            await asyncio.wait([done, drained], return_when=asyncio.FIRST_COMPLETED)
        finally:
            done.cancel()
            drained.cancel()
        if self.draining.is_set():
            if done.done() and not done.cancelled():
                done.exception()  # what the work ended with is moot now: read, not logged
            raise DomainError("SERVER_DRAINING", "this server is stopping: resume with the last "
                              "cursor")  # fmt: skip
        return done.result()
