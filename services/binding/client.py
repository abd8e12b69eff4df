"""How other services reach the binding service."""

from __future__ import annotations

import grpc

from gongji.binding.v1 import binding_pb2 as pb
from gongji.binding.v1 import binding_pb2_grpc


class BindingClient:
    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.stub = binding_pb2_grpc.BindingServiceStub(channel)

    async def payers(self, beneficiary: str, on_date: str, timeout_s: float) -> list[pb.Payer]:
        """The beneficiary's payers valid on the date, 1st payer first (rule B9, B10)."""
        request = pb.GetPayersRequest(beneficiary_id=beneficiary, on_date=on_date)
        return list((await self.stub.GetPayers(request, timeout=timeout_s)).payers)
