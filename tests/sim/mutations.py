"""The five defects the money core once had, put back one at a time into the fixed code by
monkeypatching (nothing in services/ changes): what the simulator must find.

1. `month-end`: a premium's fingerprint covers the day it is paid on, and the month-end run
   does not count a payment made under its key with other content as paid: the run of the
   second month-end of a premium year meets the first one's payment and fails.
2. `second-refund`: a reversal refunds a payment's shares along a path of its own, under refund
   ids of its own (as RefundEntries did beside CancelPayment), and leaves the record paid: a
   later cancel refunds the same shares again.
3. `give-up` (Redis Cluster): a premium attempt refused INSUFFICIENT_FUNDS gives up by deleting
   the year's mark and the payment's record, as if they were its own, after its locks are
   released: a payment another runner made meanwhile loses its record, and the year is paid
   again.
4. `unfinished` (Redis Cluster): the recovery loop drops the mark of an attempt it finds not
   journaled, without giving the attempt up: a caller paused there journals later, with no
   mark left, and if it is then cut off nothing ever finishes its payment.
5. `fences` (Redis Cluster): fencing tokens counted as Lua doubles: past 2^53 one more is the
   same number, so a holder whose lease ran out is no longer refused.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import orjson
import pytest

from services.account import payments, store
from services.account.payments import PaymentMethods
from services.account.stepwise import Stepwise
from services.account.store import account_key, marker_key, payment_key, year_key
from services.common.enums import PaymentState
from services.common.errors import DomainError
from services.common.rpc import fingerprint, reason_of
from services.settlement.coordinator import Coordinator

Mutation = Callable[[pytest.MonkeyPatch], None]


def month_end(mp: pytest.MonkeyPatch) -> None:
    mp.setattr(payments, "_fingerprint", lambda request, premium: fingerprint(request))
    pay = Coordinator.pay_premium

    async def pay_premium(self: Coordinator, *args: Any, **kwargs: Any) -> Any:
        """As the run met it before: a payment under its key with other content is no reason
        it knows (not counted as paid), so it stops the run."""
        try:
            return await pay(self, *args, **kwargs)
        except grpc.aio.AioRpcError as e:
            if reason_of(e) == "IDEMPOTENCY_CONFLICT":
                raise DomainError("IDEMPOTENCY_CONFLICT", "the key was used before") from e
            raise

    mp.setattr(Coordinator, "pay_premium", pay_premium)


def second_refund(mp: pytest.MonkeyPatch) -> None:
    cancel = PaymentMethods._cancel

    async def refunding(
        self: PaymentMethods, payment_id: str, reason: str, rid: str, reversal: bool
    ) -> Any:
        found = await self.store.payment(payment_id)
        if not reversal or found is None or found.state != PaymentState.PAID:
            return await cancel(self, payment_id, reason, rid, reversal)
        for i, s in enumerate(found.shares, start=1):
            share = {"person_id": s.person_id, "amount": str(s.amount_fen), "entry_id": s.entry_id}
            keys = [account_key(s.person_id), marker_key(s.person_id, "-")]
            args = ["", f"{payment_id}x", i, orjson.dumps(share).decode()]
            await self.store.call("refund_step", keys, args)
        return dataclasses.replace(found, state=PaymentState.CANCELLED)

    mp.setattr(PaymentMethods, "_cancel", refunding)


def give_up(mp: pytest.MonkeyPatch) -> None:
    attempt = Stepwise._attempt

    async def giving_up(self: Stepwise, ask: Any, lock_patient: bool, wait_s: float) -> Any:
        try:
            return await attempt(self, ask, lock_patient, wait_s)
        except DomainError as e:
            if ask.premium and e.reason == "INSUFFICIENT_FUNDS":
                await self.redis.delete(year_key(ask.patient, ask.premium_mark))
                await self.redis.delete(payment_key(ask.payment_id))
            raise

    mp.setattr(Stepwise, "_attempt", giving_up)


def unfinished(mp: pytest.MonkeyPatch) -> None:
    async def recover(self: Stepwise, bucket: str, member: str) -> int:
        kind, attempt, pids, payment_id = member.split(" ", 3)
        raw = await self.redis.get(payment_key(payment_id))
        rec = orjson.loads(raw) if raw else {}
        if kind == "cancel" and "cancelling" in rec:
            await self._refund_all(rec)
        elif kind == "pay" and rec.get("phase") == "paying":
            await self._finish(rec)
        elif pids:
            await self.locks.release_owned(pids.split(","), attempt)
        await self.pending.clear(member, bucket)
        return 1

    mp.setattr(Stepwise, "_recover", recover)


def fences(mp: pytest.MonkeyPatch) -> None:
    start = store._HEAD.index("local function fence_next(f)")
    end = store._HEAD.index("\nend\n", start) + len("\nend\n")
    doubles = "local function fence_next(f)\n  return I(N(f) + 1)\nend\n"
    mp.setattr(store, "_HEAD", store._HEAD[:start] + doubles + store._HEAD[end:])


MUTATIONS: dict[str, tuple[Mutation, bool]] = {  # name: (the defect put back, over the cluster)
    "month-end": (month_end, False),
    "second-refund": (second_refund, False),
    "give-up": (give_up, True),
    "unfinished": (unfinished, True),
    "fences": (fences, True),
}


@contextlib.contextmanager
def mutated(name: str) -> Iterator[bool]:
    """The defect put back for the block; whether it is to be looked for over the cluster."""
    mp = pytest.MonkeyPatch()
    mutation, cluster = MUTATIONS[name]
    try:
        mutation(mp)
        yield cluster
    finally:
        mp.undo()
