"""How other services reach the account service: the generated stub behind small methods.
Every call takes the time the caller may still wait (`timeout_s`), never a fixed one."""

from __future__ import annotations

from collections.abc import Sequence

import grpc

from gongji.account.v1 import account_pb2 as pb
from gongji.account.v1 import account_pb2_grpc
from gongji.binding.v1 import binding_pb2 as bpb


class AccountClient:
    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.stub = account_pb2_grpc.AccountServiceStub(channel)

    async def accounts(self, person_ids: list[str], timeout_s: float) -> dict[str, pb.Account]:
        """The accounts that exist among `person_ids`, by id."""
        response = await self.stub.BatchGetAccounts(
            pb.BatchGetAccountsRequest(person_ids=person_ids), timeout=timeout_s
        )
        return {a.person_id: a for a in response.accounts}

    async def pay(
        self, payment_id: str, kind: int, patient: str, sources: Sequence[pb.PaySource],
        amount_fen: int, on_date: str, timeout_s: float, quote: bool = False,
        family_aid: bool = False, details: bytes = b"", premium_year: int = 0,
        premium_kind: int = 0, institution_id: str = "", from_quota: bool = False,
    ) -> pb.Payment:  # fmt: skip
        """`family_aid`: the patient's quotas, then his payers, in their order come after
        `sources`."""
        request = pb.PayFromAccountsRequest(
            payment_id=payment_id, kind=kind,  # type: ignore[arg-type]
            patient_id=patient, sources=sources, amount_fen=amount_fen, on_date=on_date,
            quote=quote, family_aid=family_aid, details=details, premium_year=premium_year,
            premium_kind=premium_kind, institution_id=institution_id, from_quota=from_quota,
        )  # fmt: skip
        payment: pb.Payment = await self.stub.PayFromAccounts(request, timeout=timeout_s)
        return payment

    async def payment(self, payment_id: str, timeout_s: float) -> pb.Payment:
        request = pb.GetPaymentRequest(payment_id=payment_id)
        payment: pb.Payment = await self.stub.GetPayment(request, timeout=timeout_s)
        return payment

    async def payments(
        self, request: pb.ListPaymentsRequest, timeout_s: float
    ) -> pb.ListPaymentsResponse:
        listed: pb.ListPaymentsResponse = await self.stub.ListPayments(request, timeout=timeout_s)
        return listed

    async def cancel(
        self, payment_id: str, reason: str, request_id: str, timeout_s: float
    ) -> pb.Payment:
        request = pb.CancelPaymentRequest(payment_id=payment_id, reason=reason,
                                          cancel_request_id=request_id)  # fmt: skip
        payment: pb.Payment = await self.stub.CancelPayment(request, timeout=timeout_s)
        return payment

    async def reverse(self, payment_id: str, request_id: str, timeout_s: float) -> pb.Payment:
        request = pb.ReversePaymentRequest(payment_id=payment_id, cancel_request_id=request_id)
        payment: pb.Payment = await self.stub.ReversePayment(request, timeout=timeout_s)
        return payment

    async def follow(
        self, person_id: str, after: int | None, wait_ms: int, limit: int, timeout_s: float
    ) -> pb.FollowEntriesResponse:
        """The person's payment entries past ledger position `after` (None: only the position
        now), waiting up to `wait_ms` for one when there is none yet."""
        request = pb.FollowEntriesRequest(person_id=person_id, wait_ms=wait_ms, limit=limit)
        if after is not None:
            request.after = after
        followed: pb.FollowEntriesResponse = await self.stub.FollowEntries(
            request, timeout=timeout_s
        )
        return followed

    async def grant(
        self, binder: str, beneficiary: str, binding_id: str, start: str, end: str,
        timeout_s: float,
    ) -> pb.FamilyAidGrant:  # fmt: skip
        request = pb.GrantFamilyAidRequest(
            binder_id=binder, beneficiary_id=beneficiary, binding_id=binding_id,
            start_date=start, end_date=end,
        )  # fmt: skip
        grant: pb.FamilyAidGrant = await self.stub.GrantFamilyAid(request, timeout=timeout_s)
        return grant

    async def set_order(
        self, beneficiary: str, payers: Sequence[tuple[str, str]], version: int, timeout_s: float,
        quotas: Sequence[tuple[str, str]] = (),
    ) -> pb.FamilyAidOrder:  # fmt: skip
        """`payers`: (binder, binding id), 1st payer first; `quotas`: (funder, quota id),
        oldest first."""
        request = pb.SetFamilyAidOrderRequest(
            beneficiary_id=beneficiary, version=version,
            payers=[pb.PaySource(person_id=p, binding_id=b) for p, b in payers],
            quotas=[pb.PaySource(person_id=f, quota_id=q) for f, q in quotas],
        )  # fmt: skip
        order: pb.FamilyAidOrder = await self.stub.SetFamilyAidOrder(request, timeout=timeout_s)
        return order

    async def revoke(self, binder: str, binding_id: str, timeout_s: float) -> pb.FamilyAidGrant:
        request = pb.RevokeFamilyAidRequest(binder_id=binder, binding_id=binding_id)
        grant: pb.FamilyAidGrant = await self.stub.RevokeFamilyAid(request, timeout=timeout_s)
        return grant

    # -- aid quotas (N1-N5): their money state on the funder's account --------------------
    async def open_quota(self, request: pb.OpenQuotaRequest, timeout_s: float) -> bpb.Quota:
        quota: bpb.Quota = await self.stub.OpenQuota(request, timeout=timeout_s)
        return quota

    async def change_quota(
        self, funder: str, quota_id: str, amount_fen: int, timeout_s: float
    ) -> bpb.Quota:
        request = pb.ChangeQuotaAmountRequest(funder_id=funder, quota_id=quota_id,
                                              amount_fen=amount_fen)  # fmt: skip
        quota: bpb.Quota = await self.stub.ChangeQuotaAmount(request, timeout=timeout_s)
        return quota

    async def close_quota(self, request: pb.CloseQuotaRequest, timeout_s: float) -> bpb.Quota:
        quota: bpb.Quota = await self.stub.CloseQuota(request, timeout=timeout_s)
        return quota

    async def activate_quota(self, funder: str, quota_id: str, timeout_s: float) -> bpb.Quota:
        request = pb.ActivateQuotaRequest(funder_id=funder, quota_id=quota_id)
        quota: bpb.Quota = await self.stub.ActivateQuota(request, timeout=timeout_s)
        return quota

    async def quotas(
        self, refs: Sequence[tuple[str, str]], timeout_s: float
    ) -> list[tuple[bpb.Quota, int]]:
        """The quotas (funder, quota id) as their funders' accounts keep them, with their grant
        sequence; one not found is left out."""
        if not refs:
            return []
        request = pb.GetQuotasRequest(
            quotas=[pb.QuotaRef(funder_id=f, quota_id=q) for f, q in refs]
        )
        found: pb.GetQuotasResponse = await self.stub.GetQuotas(request, timeout=timeout_s)
        return list(zip(found.quotas, found.seqs, strict=True))

    async def day_payments(
        self, request: pb.ListDayPaymentsRequest | pb.ListClearingPaymentsRequest,
        timeout_s: float,
    ) -> pb.ListDayPaymentsResponse:  # fmt: skip
        """An institution's day (N7), or a month's clearing (N6)."""
        if isinstance(request, pb.ListDayPaymentsRequest):
            day: pb.ListDayPaymentsResponse = await self.stub.ListDayPayments(
                request, timeout=timeout_s
            )
            return day
        month: pb.ListDayPaymentsResponse = await self.stub.ListClearingPayments(
            request, timeout=timeout_s
        )
        return month
