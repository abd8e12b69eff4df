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
