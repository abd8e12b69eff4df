"""Settlements and premiums as a short chain of atomic phases (DESIGN "The settlement service
coordinates"; STYLE "atomic phases and recovery points"):

1. begin   one script claims the key and writes the PENDING journal with its recovery entry;
2. pay     one PayFromAccounts call: the patient's own account, then his payers in the order the
           binding service keeps at the account service (B10); one script there checks every
           status and family-aid grant at that moment and debits every share, or refuses and
           debits nothing;
3. finish  one script moves the journal to SETTLED with its consumption-record indexes.

A crash or a caller who gives up between two phases leaves a journal that recovery resumes: a
PENDING journal past its due time is resolved at the account service, which answers the payment
made or, if it never was, aborts it for good (a late PayFromAccounts of it is refused), and the
journal ends SETTLED or ABORTED. Work after `begin` runs shielded from the handler's
cancellation, so a caller's deadline stops the answer, not the work.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from typing import Any

import grpc

from gongji.account.v1 import account_pb2 as apb
from services.account.client import AccountClient
from services.common.detached import Detached
from services.common.enums import EntryKind, LegKind, PaymentState, SettlementStatus
from services.common.errors import DomainError
from services.common.rpc import Deadline, error_from_rpc
from services.settlement.journal import REVERSED, Bill, Journal, Leg, PremiumOrder, settlement_id
from services.settlement.store import SettlementStore

log = logging.getLogger(__name__)
PENDING, SETTLED, ABORTED = (
    SettlementStatus.PENDING, SettlementStatus.SETTLED, SettlementStatus.ABORTED,
)  # fmt: skip
CANCELLING, CANCELLED = SettlementStatus.CANCELLING, SettlementStatus.CANCELLED
# A peer failure that does not say whether the payment was made.
_UNKNOWN_OUTCOME = frozenset({"DEPENDENCY_UNAVAILABLE", "INTERNAL"})
# Our own clean-up after a caller has gone is not bounded by his deadline.
CLEANUP_S = 5.0


def now_ms() -> int:
    return int(time.time() * 1000)


class Coordinator:
    def __init__(
        self, store: SettlementStore, accounts: AccountClient, recovery_after_ms: int
    ) -> None:
        self.store, self.accounts = store, accounts
        self.recovery_after_ms = recovery_after_ms
        self.detached = Detached()

    # -- settlements -------------------------------------------------------------------------
    async def quote(self, bill: Bill, deadline: Deadline) -> Journal:
        """S6: the split a settlement would make now; moves nothing, records nothing."""
        sources, family_aid = _sources(bill)
        payment = await self.accounts.pay(
            bill.settlement_id, EntryKind.SETTLEMENT, bill.patient_id, sources,
            bill.personal_burden_fen, bill.service_date, 0, deadline.left(), quote=True,
            family_aid=family_aid,
        )  # fmt: skip
        now = now_ms()
        return Journal(bill.settlement_id, SettlementStatus.QUOTED, "", now, now, bill=bill,
                       legs=_legs(payment))  # fmt: skip

    async def settle(self, bill: Bill, deadline: Deadline) -> Journal:
        journal = self._pending(bill.settlement_id, bill.fingerprint(), bill=bill)
        found = await self.store.begin(journal)
        if found is not None:
            return await self._replay(found, journal.fp)
        sources, family_aid = _sources(bill)
        work = self._pay(journal, EntryKind.SETTLEMENT, sources, bill.personal_burden_fen,
                         bill.service_date, deadline, family_aid)  # fmt: skip
        return await self.detached.run(work)

    async def _replay(self, found: Journal | str, fp: str, premium: bool = False) -> Journal:
        """The answer for a repeat of a payment that has a journal. A premium's repeat may
        find it ABORTED, and then pays anew."""
        if not isinstance(found, Journal):
            raise DomainError("SETTLEMENT_REVERSED", "this settlement was reversed")
        if found.fp != fp:
            raise DomainError("IDEMPOTENCY_CONFLICT", "the key was used before with other content")
        if found.status == PENDING and now_ms() >= found.due_ms:
            found = await self.resolve(found)  # its owner is gone: settle it now
        if found.status == PENDING:
            raise DomainError("SETTLEMENT_IN_PROGRESS", "this payment is still in flight")
        if found.status == ABORTED and not premium:
            raise DomainError("SETTLEMENT_ABORTED", "this settlement aborted; use a new id")
        return found

    # -- the phases every payment shares ----------------------------------------------------
    def _pending(self, payment_id: str, fp: str, **what: Any) -> Journal:
        now = now_ms()
        return Journal(payment_id, PENDING, fp, now, now + self.recovery_after_ms, **what)

    async def _pay(
        self, journal: Journal, kind: int, sources: list[apb.PaySource], amount: int,
        on_date: str, deadline: Deadline, family_aid: bool = False,
    ) -> Journal:  # fmt: skip
        try:
            payment = await self.accounts.pay(
                journal.payment_id, kind, journal.patient_id, sources, amount, on_date,
                journal.due_ms, deadline.left(), family_aid=family_aid,
            )  # fmt: skip
        except grpc.aio.AioRpcError as e:
            error = error_from_rpc(e)
            if error.reason in _UNKNOWN_OUTCOME:
                ended = await self._resolve_quietly(journal)
                if ended is not None and ended.status == SETTLED:
                    return ended
            elif error.reason == "SETTLEMENT_ABORTED":  # recovery took it over meanwhile
                await self._abort(journal)
            else:  # refused: nothing was paid, and the key is free again
                await self.store.move(journal, None)
            raise error from None
        return await self._finish(journal, payment)

    async def _finish(self, journal: Journal, payment: apb.Payment) -> Journal:
        settled = journal.moved(SETTLED, legs=_legs(payment), settled_ms=now_ms())
        if await self.store.move(journal, settled):
            return settled
        return await self._reload(journal)

    async def _abort(self, journal: Journal) -> Journal:
        aborted = journal.moved(ABORTED)
        if await self.store.move(journal, aborted):
            log.warning("payment aborted", extra={"fields": {"payment_id": journal.payment_id}})
            return aborted
        return await self._reload(journal)

    async def _reload(self, journal: Journal) -> Journal:
        """Another hand (recovery, a reversal) moved the journal first: what it reads now."""
        found = await self.store.load(journal.payment_id)
        if not isinstance(found, Journal):
            raise DomainError("SETTLEMENT_NOT_FOUND", "the settlement is gone")
        if found.status == ABORTED:
            raise DomainError("SETTLEMENT_ABORTED", "this payment was aborted")
        return found

    # -- recovery ----------------------------------------------------------------------------
    async def recover(self, payment_id: str) -> None:
        """What the sweeper does with one due journal."""
        found = await self.store.load(payment_id)
        if isinstance(found, Journal) and found.status in (PENDING, CANCELLING):
            ended = await self.resolve(found)
            log.warning("recovered", extra={"fields": {"payment_id": payment_id,
                                                       "status": ended.status.name}})  # fmt: skip
        else:
            await self.store.forget_due(payment_id)

    async def resolve(self, journal: Journal) -> Journal:
        """Finish a journal whose owner is gone: PENDING ends SETTLED or ABORTED by what the
        account service says of its payment; CANCELLING gets its refunds."""
        if journal.status == CANCELLING:
            return await self._refund(journal, Deadline.within(CLEANUP_S))
        if journal.status != PENDING:
            return journal
        payment = await self.accounts.resolve(journal.payment_id, journal.patient_id, CLEANUP_S)
        if PaymentState(payment.state) == PaymentState.PAID:
            return await self._finish(journal, payment)
        try:
            return await self._abort(journal)
        except DomainError as e:
            if e.reason != "SETTLEMENT_ABORTED":
                raise
            return journal.moved(ABORTED)

    async def _resolve_quietly(self, journal: Journal) -> Journal | None:
        try:
            return await self.resolve(journal)
        except Exception:
            log.warning("payment left to recovery", exc_info=True,
                        extra={"fields": {"payment_id": journal.payment_id}})  # fmt: skip
            return None

    # -- cancel and reversal -----------------------------------------------------------------
    async def cancel(
        self, sid: str, reason: str, request_id: str, deadline: Deadline, reversal: bool = False
    ) -> Journal:
        """S9: every leg refunded exactly once, to its own account. The cancel is journaled
        (CANCELLING, with its recovery entry) before the first refund."""
        journal = await self._settlement(sid)
        if journal.status in (CANCELLING, CANCELLED):
            if journal.cancel_request_id != request_id and not reversal:
                raise DomainError("ALREADY_CANCELLED", "this settlement was cancelled before")
        elif journal.status != SETTLED:
            raise DomainError("SETTLEMENT_NOT_SETTLED", "only a settled settlement is cancelled")
        else:
            now = now_ms()
            cancelling = journal.moved(CANCELLING, cancelled_ms=now, cancel_reason=reason,
                                       cancel_request_id=request_id)  # fmt: skip
            if not await self.store.move(journal, cancelling, due_ms=now + self.recovery_after_ms):
                return await self.cancel(sid, reason, request_id, deadline, reversal)
            journal = cancelling
        if journal.status == CANCELLED:
            return journal
        return await self.detached.run(self._refund(journal, deadline))

    async def _settlement(self, sid: str) -> Journal:
        found = await self.store.load(sid)
        if not isinstance(found, Journal) or found.bill is None:
            raise DomainError("SETTLEMENT_NOT_FOUND", "no such settlement")
        return found

    async def _refund(self, journal: Journal, deadline: Deadline) -> Journal:
        sid = journal.payment_id
        specs = [apb.RefundSpec(entry_id=leg.entry_id, person_id=leg.payer_id,
                                refund_id=f"{sid}:refund:{i}")
                 for i, leg in enumerate(journal.legs)]  # fmt: skip
        if specs:
            await self.accounts.refund(specs, f"cancel {sid}", f"{sid}:refund", deadline.left())
        cancelled = journal.moved(CANCELLED)
        if await self.store.move(journal, cancelled):
            return cancelled
        return await self._reload(journal)

    async def reverse(
        self, institution_id: str, medins_setl_id: str, request_id: str, deadline: Deadline
    ) -> Journal | None:
        """S10: a key that never arrived is tombstoned (None); a settlement in flight is
        decided now; a settled one is cancelled."""
        found = await self.store.reverse(settlement_id(institution_id, medins_setl_id))
        if found is None or found == REVERSED:
            return None
        assert isinstance(found, Journal)
        journal = await self.resolve(found) if found.status == PENDING else found
        if journal.status in (SETTLED, CANCELLING):
            return await self.cancel(journal.payment_id, "reversal", request_id, deadline, True)
        return journal

    # -- premiums ----------------------------------------------------------------------------
    async def pay_premium(
        self, order: PremiumOrder, fp: str, marker: str, today: str, deadline: Deadline
    ) -> Journal:
        """A2: one account pays the whole premium; one payment per beneficiary and year. The
        payment id comes from the request (`marker`), so a retry of a request whose answer was
        lost finds its own payment; only after that one aborted does a retry pay anew."""
        payment_id = "P" + hashlib.sha256(marker.encode()).hexdigest()[:24]
        mine = await self.store.load(payment_id)
        if isinstance(mine, Journal):
            mine = await self._replay(mine, fp, premium=True)
            if mine.status != ABORTED:
                return mine
            payment_id = "P" + secrets.token_hex(12)
        journal = self._pending(payment_id, fp, premium=order)
        held = await self.store.begin(journal)
        if held is not None:
            await self._year_taken(str(held).removeprefix("HELD:"), order.year)
        # The payer pays his own premium, or a relative's under a binding valid today: the
        # account service finds that binding in the beneficiary's payer order.
        source = apb.PaySource(person_id=order.payer_id)
        work = self._pay(journal, EntryKind.PREMIUM, [source], order.amount_fen, today, deadline)
        return await self.detached.run(work)

    async def _year_taken(self, holder: str, year: int) -> None:
        found = await self.store.load(holder)
        if isinstance(found, Journal) and found.status == PENDING and now_ms() >= found.due_ms:
            found = await self.resolve(found)
        if isinstance(found, Journal) and found.status == SETTLED:
            raise DomainError("PREMIUM_ALREADY_PAID", f"the {year} premium is already paid")
        raise DomainError("SETTLEMENT_IN_PROGRESS", f"a payment of the {year} premium is in flight")


def _sources(bill: Bill) -> tuple[list[apb.PaySource], bool]:
    """Who may pay, in priority order (S2, S3): the own account, then (when the patient takes
    family aid) his payers 1, 2, 3. The account service skips whoever may not pay at the moment
    of payment (S4)."""
    if not bill.use_personal_account:
        return [], False
    return [apb.PaySource(person_id=bill.patient_id)], bill.use_family_aid


def _legs(payment: apb.Payment) -> tuple[Leg, ...]:
    return tuple(
        Leg(s.person_id, LegKind.OWN_ACCOUNT if s.own_account else LegKind.FAMILY_AID,
            s.amount_fen, s.entry_id, s.balance_after_fen)
        for s in payment.shares
    )  # fmt: skip
