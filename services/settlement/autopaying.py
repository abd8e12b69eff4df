"""SetPremiumAutoPay, GetPremiumAutoPay and RunPremiumDeductions (rule A2): the RPCs over
services.settlement.autopay.

Whose say an auto-pay needs: the beneficiary chooses the account that pays his premium (A2), and
its payer's money is spent. So a citizen may set one as the beneficiary or as the payer it
names; once one is stored, only the beneficiary and its payer (or the counter) may change or
disable it. Any payer other than the stored one must be able to pay for him (bound to him, else
NOT_BOUND; or himself, with a personal account), whether the auto-pay is enabled or not."""

from __future__ import annotations

import time
from typing import Any

import grpc

from gongji.settlement.v1 import settlement_pb2 as pb
from services.common import ids
from services.common.clock import Clock, beijing_today, now_ms
from services.common.errors import DomainError
from services.common.idempotency import Requests
from services.common.rpc import Deadline, error_from_rpc
from services.settlement.autopay import AutoPay, AutoPays, Deductions
from services.settlement.bill import PremiumOrder

Context = Any  # grpc.aio.ServicerContext, untyped

# What makes a payer unfit for good (an auto-pay is then refused); a payer short of money or
# suspended today may still pay at month end, and the job says so if he cannot.
_UNFIT = frozenset({"BENEFICIARY_NOT_RESIDENT", "NOT_BOUND", "NO_PERSONAL_ACCOUNT",
                    "ACCOUNT_NOT_FOUND", "ACCOUNT_CLOSED"})  # fmt: skip


class AutoPayMethods:
    requests: Requests
    clock: Clock
    autopays: AutoPays
    deductions: Deductions

    def _pid(self, value: str, field: str) -> str:
        return ids.person_id(value, beijing_today(self.clock), field)

    async def SetPremiumAutoPay(
        self, request: pb.SetPremiumAutoPayRequest, context: Context
    ) -> pb.PremiumAutoPay:
        beneficiary = self._pid(request.beneficiary_id, "beneficiary_id")
        payer = self._pid(request.payer_id, "payer_id")
        today = beijing_today(self.clock)
        deadline = Deadline.of(context)

        async def run(fp: str, marker: str) -> pb.PremiumAutoPay:
            stored = await self.autopays.find(beneficiary)
            if request.enabled or stored is None or stored.payer_id != payer:
                # the payment as the job would make it, quoted: may he pay?
                await self._quote(payer, beneficiary, today.isoformat(), today.year, deadline)
            a = AutoPay(beneficiary, payer, request.enabled, now_ms(self.clock))
            await self.autopays.put(a)
            return a.pb()

        return await self.requests.once(
            "SetPremiumAutoPay", request, pb.PremiumAutoPay, run, context
        )

    async def autopay_parties(
        self, request: pb.SetPremiumAutoPayRequest, context: Context
    ) -> list[str]:
        """Who may set this beneficiary's auto-pay (access, before the request is checked): he
        himself, and the payer of the one stored, or while none is, the payer named."""
        try:
            beneficiary = self._pid(request.beneficiary_id, "beneficiary_id")
        except DomainError:
            return [request.beneficiary_id]
        stored = await self.autopays.find(beneficiary)
        return [beneficiary, request.payer_id if stored is None else stored.payer_id]

    async def _quote(
        self, payer: str, beneficiary: str, today: str, year: int, deadline: Deadline
    ) -> None:
        amount = await self.deductions.premium(beneficiary, deadline)
        order = PremiumOrder(payer, beneficiary, year, amount)
        try:
            await self.deductions.coordinator.pay_premium(
                order, f"quote:{beneficiary}", today, deadline, quote=True
            )
        except grpc.aio.AioRpcError as e:
            error = error_from_rpc(e)
            if error.reason in _UNFIT:
                raise error from None

    async def GetPremiumAutoPay(
        self, request: pb.GetPremiumAutoPayRequest, context: Context
    ) -> pb.PremiumAutoPay:
        return (await self.autopays.get(self._pid(request.beneficiary_id, "beneficiary_id"))).pb()

    async def RunPremiumDeductions(
        self, request: pb.RunPremiumDeductionsRequest, context: Context
    ) -> pb.PremiumDeductionRun:
        today = beijing_today(self.clock)
        deadline = Deadline.of(context, default_s=600.0)
        started_ms = int(time.time() * 1000)  # compared with payments' times, stamped by Redis

        async def run(fp: str, marker: str) -> pb.PremiumDeductionRun:
            # A run answered before is answered again whatever the day: the year is judged
            # against today only for a new one (the December run retried in January).
            if request.year not in (today.year, today.year + 1):
                raise DomainError("INVALID_ARGUMENT", "year must be this year or next")
            return await self.deductions.run(
                request.run_id, request.year, today.isoformat(), started_ms, deadline
            )

        return await self.requests.once(
            "RunPremiumDeductions", request, pb.PremiumDeductionRun, run, context,
            rid=request.run_id,
        )  # fmt: skip
