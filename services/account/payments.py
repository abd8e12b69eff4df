"""PayFromAccounts, ResolvePayment and the family-aid grants: how the settlement service pays a
bill or a premium from a family's accounts in one atomic step, and how the binding service tells
the account service which binder may pay for whom (DESIGN "The settlement service coordinates").
"""

from __future__ import annotations

from gongji.account.v1 import account_pb2 as pb
from services.account.base import Context, ServicerBase
from services.account.convert import grant_pb, payment_pb
from services.account.domain import Source
from services.common import ids
from services.common.clock import ms_of
from services.common.enums import EntryKind
from services.common.errors import DomainError
from services.common.rpc import fingerprint

_PAYMENT_KINDS = frozenset({EntryKind.SETTLEMENT, EntryKind.PREMIUM})


class PaymentMethods(ServicerBase):
    async def PayFromAccounts(
        self, request: pb.PayFromAccountsRequest, context: Context
    ) -> pb.Payment:
        payment_id = ids.token(request.payment_id, "payment_id")
        kind = ids.enum_value(request.kind, _PAYMENT_KINDS, "kind")
        patient = self._pid(request.patient_id, "patient_id")
        sources = self._sources(request.sources)
        premium = kind == EntryKind.PREMIUM
        if premium and len(sources) != 1:
            raise DomainError("INVALID_ARGUMENT", "a premium is paid from exactly one account")
        amount = ids.amount(request.amount_fen, allow_zero=not premium)
        on_date = ids.date(request.on_date, "on_date").isoformat()
        not_after = ms_of(request.not_after)
        if not request.quote and not_after <= 0:
            raise DomainError("INVALID_ARGUMENT", "not_after is required")
        payment = await self.store.pay(
            payment_id, kind, patient, sources, amount, on_date, not_after, request.quote,
            fingerprint(request),
        )  # fmt: skip
        return payment_pb(payment)

    def _sources(self, given: object) -> list[Source]:
        sources = [
            Source(self._pid(s.person_id, "sources.person_id"),
                   ids.token(s.binding_id, "sources.binding_id") if s.binding_id else "")
            for s in given  # type: ignore[attr-defined]
        ]  # fmt: skip
        if len(sources) > ids.MAX_ITEMS:
            raise DomainError("INVALID_ARGUMENT", f"sources holds more than {ids.MAX_ITEMS} items")
        if len({s.person_id for s in sources}) != len(sources):
            raise DomainError("INVALID_ARGUMENT", "sources repeats a person")
        return sources

    async def ResolvePayment(
        self, request: pb.ResolvePaymentRequest, context: Context
    ) -> pb.Payment:
        payment_id = ids.token(request.payment_id, "payment_id")
        patient = self._pid(request.patient_id, "patient_id")
        return payment_pb(await self.store.resolve_payment(payment_id, patient))

    async def GrantFamilyAid(
        self, request: pb.GrantFamilyAidRequest, context: Context
    ) -> pb.FamilyAidGrant:
        binder = self._pid(request.binder_id, "binder_id")
        beneficiary = self._pid(request.beneficiary_id, "beneficiary_id")
        binding_id = ids.token(request.binding_id, "binding_id")
        start = ids.date(request.start_date, "start_date").isoformat()
        end = ids.date(request.end_date, "end_date").isoformat() if request.end_date else ""
        grant = await self.store.grant(binder, beneficiary, binding_id, start, end)
        return grant_pb(grant)

    async def RevokeFamilyAid(
        self, request: pb.RevokeFamilyAidRequest, context: Context
    ) -> pb.FamilyAidGrant:
        binder = self._pid(request.binder_id, "binder_id")
        binding_id = ids.token(request.binding_id, "binding_id")
        return grant_pb(await self.store.revoke(binder, binding_id))
