"""How other services reach the account service: the generated stub behind small methods."""

from __future__ import annotations

import grpc

from gongji.account.v1 import account_pb2 as pb
from gongji.account.v1 import account_pb2_grpc


class AccountClient:
    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.stub = account_pb2_grpc.AccountServiceStub(channel)

    async def accounts(self, person_ids: list[str], timeout_s: float) -> dict[str, pb.Account]:
        """The accounts that exist among `person_ids`, by id."""
        response = await self.stub.BatchGetAccounts(
            pb.BatchGetAccountsRequest(person_ids=person_ids), timeout=timeout_s
        )
        return {a.person_id: a for a in response.accounts}

    async def place(
        self, holds: list[pb.HoldSpec], kind: int, reference: str, request_id: str, timeout_s: float
    ) -> list[pb.Hold]:
        request = pb.PlaceHoldsRequest(
            holds=holds,
            kind=kind,  # type: ignore[arg-type]
            reference=reference,
            request_id=request_id,
        )
        return list((await self.stub.PlaceHolds(request, timeout=timeout_s)).holds)

    async def commit(
        self, refs: list[pb.HoldRef], request_id: str, timeout_s: float
    ) -> list[pb.LedgerEntry]:
        request = pb.CommitHoldsRequest(holds=refs, request_id=request_id)
        return list((await self.stub.CommitHolds(request, timeout=timeout_s)).entries)

    async def void(self, refs: list[pb.HoldRef], request_id: str, timeout_s: float) -> None:
        await self.stub.VoidHolds(pb.VoidHoldsRequest(holds=refs, request_id=request_id),
                                  timeout=timeout_s)  # fmt: skip

    async def refund(
        self, specs: list[pb.RefundSpec], reference: str, request_id: str, timeout_s: float
    ) -> list[pb.LedgerEntry]:
        request = pb.RefundEntriesRequest(refunds=specs, reference=reference, request_id=request_id)
        return list((await self.stub.RefundEntries(request, timeout=timeout_s)).entries)
