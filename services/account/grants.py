"""Family-aid grants and payer orders: how the binding service tells the account service which
binder may pay for whom (GrantFamilyAid, RevokeFamilyAid) and in which order (SetFamilyAidOrder,
rule B10). The payment checks a payer's grant at the moment of payment (S4): a grant changes
under the binder's account lock, so a payment planned under that lock is never overtaken by a
revoke (once RemoveBinding has answered, no payment takes his money for that relative)."""

from __future__ import annotations

from gongji.account.v1 import account_pb2 as pb
from services.account.base import Context, ServicerBase
from services.account.convert import grant_pb
from services.account.domain import Source
from services.common import ids
from services.common.errors import DomainError
from services.common.rpc import remaining


class GrantMethods(ServicerBase):
    async def GrantFamilyAid(
        self, request: pb.GrantFamilyAidRequest, context: Context
    ) -> pb.FamilyAidGrant:
        binder = self._pid(request.binder_id, "binder_id")
        beneficiary = self._pid(request.beneficiary_id, "beneficiary_id")
        binding_id = ids.token(request.binding_id, "binding_id")
        start = ids.date(request.start_date, "start_date").isoformat()
        end = ids.date(request.end_date, "end_date").isoformat() if request.end_date else ""
        async with self.locks.hold([binder], remaining(context)):
            grant = await self.store.grant(binder, beneficiary, binding_id, start, end)
        return grant_pb(grant)

    async def RevokeFamilyAid(
        self, request: pb.RevokeFamilyAidRequest, context: Context
    ) -> pb.FamilyAidGrant:
        binder = self._pid(request.binder_id, "binder_id")
        binding_id = ids.token(request.binding_id, "binding_id")
        async with self.locks.hold([binder], remaining(context)):
            return grant_pb(await self.store.revoke(binder, binding_id))

    async def SetFamilyAidOrder(
        self, request: pb.SetFamilyAidOrderRequest, context: Context
    ) -> pb.FamilyAidOrder:
        beneficiary = self._pid(request.beneficiary_id, "beneficiary_id")
        payers = [
            Source(self._pid(p.person_id, "payers.person_id"),
                   ids.token(p.binding_id, "payers.binding_id"))
            for p in request.payers
        ]  # fmt: skip
        quotas = [
            Source(self._pid(q.person_id, "quotas.person_id"), "",
                   ids.token(q.quota_id, "quotas.quota_id"))
            for q in request.quotas
        ]  # fmt: skip
        if len(payers) > ids.MAX_ITEMS or len({p.person_id for p in payers}) != len(payers):
            raise DomainError("INVALID_ARGUMENT", "payers must be distinct, at most 100")
        if len(quotas) > ids.MAX_ITEMS or len({q.quota_id for q in quotas}) != len(quotas):
            raise DomainError("INVALID_ARGUMENT", "quotas must be distinct, at most 100")
        if request.version <= 0:
            raise DomainError("INVALID_ARGUMENT", "version must be > 0")
        stored, version = await self.store.set_order(beneficiary, quotas + payers,
                                                     request.version)  # fmt: skip
        self.orders.put(beneficiary, version, stored)
        return pb.FamilyAidOrder(
            beneficiary_id=beneficiary, version=version,
            payers=[pb.PaySource(person_id=s.person_id, binding_id=s.binding_id)
                    for s in stored if not s.quota_id],
            quotas=[pb.PaySource(person_id=s.person_id, quota_id=s.quota_id)
                    for s in stored if s.quota_id],
        )  # fmt: skip
