"""Payments: how the settlement service pays a bill or a premium from a family's accounts, and
cancels or reverses it, and reads them back: the one way money leaves an account for a bill, a
premium or a quota draw, and the one way a share is refunded. On one Redis each is one
script (lua/pay.lua, cancel_payment.lua); under Redis Cluster the same steps run one slot at a
time under the family's locks (stepwise.py). The payment's record is the settlement's record."""

from __future__ import annotations

import functools

from gongji.account.v1 import account_pb2 as pb
from services.account.base import Context, ServicerBase
from services.account.convert import payment_pb
from services.account.domain import Payment, Source
from services.account.orders import with_order
from services.account.store import StaleOrder, premium_mark
from services.common import ids
from services.common.clock import ms_of
from services.common.enums import EntryKind, PaymentState, PremiumKind
from services.common.errors import DomainError
from services.common.rpc import fingerprint, remaining

_PAYMENT_KINDS = frozenset({EntryKind.SETTLEMENT, EntryKind.PREMIUM})
_ORDER_TRIES = 3  # an order changes by a person's act: two changes within one payment are rare
_FAR_FUTURE_MS = 253402300799000
MAX_DETAILS = 4096


class PaymentMethods(ServicerBase):
    async def PayFromAccounts(
        self, request: pb.PayFromAccountsRequest, context: Context
    ) -> pb.Payment:
        payment_id = ids.token(request.payment_id, "payment_id")
        kind = ids.enum_value(request.kind, _PAYMENT_KINDS, "kind")
        patient = self._pid(request.patient_id, "patient_id")
        sources = self._sources(request.sources)
        premium = kind == EntryKind.PREMIUM
        if premium and (len(sources) != 1 or request.family_aid or request.premium_year <= 0):
            raise DomainError(
                "INVALID_ARGUMENT", "a premium is paid from exactly one account, for a year"
            )
        if request.from_quota and (not premium or sources[0].quota_id):
            raise DomainError("INVALID_ARGUMENT", "from_quota is for a premium of one payer")
        mark = _premium_mark(request) if premium else ""
        institution = ids.institution_id(request.institution_id) if request.institution_id else ""
        if premium and institution:
            raise DomainError("INVALID_ARGUMENT", "a premium has no institution")
        amount = ids.amount(request.amount_fen, allow_zero=not premium)
        on_date = ids.date(request.on_date, "on_date").isoformat()
        details = _details(request.details)
        fp = _fingerprint(request, premium)
        unbound = any(not (s.binding_id or s.quota_id) and s.person_id != patient
                      for s in sources)  # fmt: skip
        needs_order = request.family_aid or unbound or request.from_quota
        pay = self.store.pay
        if self.stepwise:
            pay = functools.partial(self.stepwise.pay, wait_s=remaining(context))
        for _ in range(_ORDER_TRIES):
            version, order = self.orders.get(patient)
            full = with_order(patient, sources, order, request.family_aid)
            if request.from_quota:  # N5: his quotas for the beneficiary first
                full = [q for q in order if q.quota_id and q.person_id == full[0].person_id] + full
            try:
                payment = await pay(
                    payment_id, kind, patient, full, amount, on_date, request.quote, fp,
                    details, mark, version if needs_order else None, institution,
                )  # fmt: skip
                return payment_pb(payment)
            except StaleOrder as e:
                self.orders.put(patient, e.version, e.order)
        raise DomainError("INTERNAL", "the payer order kept changing; retry")

    async def GetPayment(self, request: pb.GetPaymentRequest, context: Context) -> pb.Payment:
        found = await self.store.payment(ids.token(request.payment_id, "payment_id"))
        if found is None or found.state == PaymentState.REVERSED:
            raise DomainError("SETTLEMENT_NOT_FOUND", "no such payment")
        return payment_pb(found)

    async def ListPayments(
        self, request: pb.ListPaymentsRequest, context: Context
    ) -> pb.ListPaymentsResponse:
        if bool(request.patient_id) == bool(request.payer_id):
            raise DomainError("INVALID_ARGUMENT", "set exactly one of patient_id, payer_id")
        as_payer = bool(request.payer_id)
        pid = self._pid(request.payer_id or request.patient_id, "payer_id" if as_payer
                        else "patient_id")  # fmt: skip
        if request.offset < 0 or not 0 < request.limit <= ids.MAX_PAGE_SIZE:
            raise DomainError("INVALID_ARGUMENT", f"offset >= 0, limit 1..{ids.MAX_PAGE_SIZE}")
        start = ms_of(request.start_time) if request.HasField("start_time") else 0
        end = ms_of(request.end_time) if request.HasField("end_time") else _FAR_FUTURE_MS
        found = await self.store.payments(pid, as_payer, start, end, request.offset,
                                          request.limit + 1)  # fmt: skip
        return pb.ListPaymentsResponse(
            payments=[payment_pb(p) for p in found[: request.limit]],
            more=len(found) > request.limit,
        )

    async def CancelPayment(self, request: pb.CancelPaymentRequest, context: Context) -> pb.Payment:
        payment_id = ids.token(request.payment_id, "payment_id")
        reason = ids.text(request.reason, "reason", required=False)
        rid = ids.token(request.cancel_request_id, "cancel_request_id")
        return payment_pb(await self._cancel(payment_id, reason, rid, request.reversal))

    async def ReversePayment(
        self, request: pb.ReversePaymentRequest, context: Context
    ) -> pb.Payment:
        """S10: a payment never made is REVERSED for good; one made is cancelled."""
        payment_id = ids.token(request.payment_id, "payment_id")
        rid = ids.token(request.cancel_request_id, "cancel_request_id")
        try:
            found = await self.store.reverse_payment(payment_id)
        except DomainError as e:
            if e.reason != "SETTLEMENT_IN_PROGRESS" or self.stepwise is None:
                raise
            await self.stepwise.finish_payment(payment_id)  # made first, then cancelled
            found = await self.store.reverse_payment(payment_id)
        if found.state == PaymentState.PAID:
            found = await self._cancel(payment_id, "reversal", rid, True)
        return payment_pb(found)

    async def _cancel(self, payment_id: str, reason: str, rid: str, reversal: bool) -> Payment:
        if self.stepwise:
            return await self.stepwise.cancel(payment_id, reason, rid, reversal)
        return await self.store.cancel_payment(payment_id, reason, rid, reversal)

    def _sources(self, given: object) -> list[Source]:
        sources = [
            Source(self._pid(s.person_id, "sources.person_id"),
                   ids.token(s.binding_id, "sources.binding_id") if s.binding_id else "",
                   ids.token(s.quota_id, "sources.quota_id") if s.quota_id else "")
            for s in given  # type: ignore[attr-defined]
        ]  # fmt: skip
        if len(sources) > ids.MAX_ITEMS:
            raise DomainError("INVALID_ARGUMENT", f"sources holds more than {ids.MAX_ITEMS} items")
        if any(s.binding_id and s.quota_id for s in sources):
            raise DomainError("INVALID_ARGUMENT", "a source has a binding or a quota, not both")
        if len({(s.person_id, s.quota_id) for s in sources}) != len(sources):
            raise DomainError("INVALID_ARGUMENT", "sources repeats a person")
        return sources


def _fingerprint(request: pb.PayFromAccountsRequest, premium: bool) -> str:
    """A premium is the same payment whatever the day it is paid on (a retry across midnight,
    the month-end job run again next month): its date only decides whether a binding is valid
    then, not what is paid."""
    if not premium:
        return fingerprint(request)
    copy = pb.PayFromAccountsRequest()
    copy.CopyFrom(request)
    copy.ClearField("on_date")
    return fingerprint(copy)


def _premium_mark(request: pb.PayFromAccountsRequest) -> str:
    """Where the beneficiary's account marks the premium paid, one per kind and year (A2, N5):
    the year for a resident medical premium (as before kinds), `ltc:<year>` for long-term care."""
    if request.premium_kind not in (0, *PremiumKind):
        raise DomainError("INVALID_ARGUMENT", "premium_kind is not a PremiumKind")
    return premium_mark(request.premium_kind, request.premium_year)


def _details(raw: bytes) -> str:
    if len(raw) > MAX_DETAILS:
        raise DomainError("INVALID_ARGUMENT", f"details holds more than {MAX_DETAILS} bytes")
    try:
        return raw.decode()
    except UnicodeDecodeError:
        raise DomainError("INVALID_ARGUMENT", "details must be UTF-8") from None
