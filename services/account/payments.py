"""PayFromAccounts, ResolvePayment and the family-aid grants: how the settlement service pays a
bill or a premium from a family's accounts in one atomic step, and how the binding service tells
the account service which binder may pay for whom (DESIGN "The settlement service coordinates").
"""

from __future__ import annotations

from gongji.account.v1 import account_pb2 as pb
from services.account.base import Context, ServicerBase
from services.account.convert import grant_pb, payment_pb
from services.account.domain import Source
from services.account.orders import with_order
from services.account.store import StaleOrder
from services.common import ids
from services.common.clock import ms_of
from services.common.enums import EntryKind
from services.common.errors import DomainError
from services.common.rpc import fingerprint

_PAYMENT_KINDS = frozenset({EntryKind.SETTLEMENT, EntryKind.PREMIUM})
_ORDER_TRIES = 3  # an order changes by a person's act: two changes within one payment are rare


class PaymentMethods(ServicerBase):
    async def PayFromAccounts(
        self, request: pb.PayFromAccountsRequest, context: Context
    ) -> pb.Payment:
        payment_id = ids.token(request.payment_id, "payment_id")
        kind = ids.enum_value(request.kind, _PAYMENT_KINDS, "kind")
        patient = self._pid(request.patient_id, "patient_id")
        sources = self._sources(request.sources)
        premium = kind == EntryKind.PREMIUM
        if premium and (len(sources) != 1 or request.family_aid):
            raise DomainError("INVALID_ARGUMENT", "a premium is paid from exactly one account")
        amount = ids.amount(request.amount_fen, allow_zero=not premium)
        on_date = ids.date(request.on_date, "on_date").isoformat()
        not_after = ms_of(request.not_after)
        if not request.quote and not_after <= 0:
            raise DomainError("INVALID_ARGUMENT", "not_after is required")
        fp = fingerprint(request)
        unbound = any(not s.binding_id and s.person_id != patient for s in sources)
        needs_order = request.family_aid or unbound
        for _ in range(_ORDER_TRIES):
            version, order = self.orders.get(patient)
            full = with_order(patient, sources, order, request.family_aid)
            try:
                payment = await self.store.pay(
                    payment_id, kind, patient, full, amount, on_date, not_after,
                    request.quote, fp, version if needs_order else None,
                )  # fmt: skip
                return payment_pb(payment)
            except StaleOrder as e:
                self.orders.put(patient, e.version, e.order)
        raise DomainError("INTERNAL", "the payer order kept changing; retry")

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

    async def SetFamilyAidOrder(
        self, request: pb.SetFamilyAidOrderRequest, context: Context
    ) -> pb.FamilyAidOrder:
        beneficiary = self._pid(request.beneficiary_id, "beneficiary_id")
        payers = self._sources(request.payers)
        if any(not p.binding_id for p in payers):
            raise DomainError("INVALID_ARGUMENT", "every payer needs his binding_id")
        if request.version <= 0:
            raise DomainError("INVALID_ARGUMENT", "version must be > 0")
        stored, version = await self.store.set_order(beneficiary, payers, request.version)
        self.orders.put(beneficiary, version, stored)
        return pb.FamilyAidOrder(
            beneficiary_id=beneficiary, version=version,
            payers=[pb.PaySource(person_id=s.person_id, binding_id=s.binding_id) for s in stored],
        )  # fmt: skip

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
