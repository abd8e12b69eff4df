"""Automatic month-end premium deduction (rule A2, 医保部门每月底自动划扣).

A beneficiary's auto-pay names one payer: a binder with a binding to him valid today, or
himself when he has a personal account. The month-end job pays every enabled one's premium for
a year through the same one-step payment as PayResidentPremium, under a payment id made from
the beneficiary and the year: so a job run twice, or killed half-way and run again, pays no one
twice (the second finds the payment made, or the year marked paid), and what it could not pay
is listed with the reason. A payment's content does not hold the day it is paid on, so the runs
of every month-end of a year find the year's one payment as made.

Auto-pays are kept per province of the beneficiary's id (`setl:{autopay:<NN>}`, a hash of
beneficiary -> record): the job reads them with HSCAN, a batch at a time.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import cast

import grpc
import orjson
import redis.asyncio as aioredis

from gongji.account.v1 import account_pb2 as apb
from gongji.settlement.v1 import settlement_pb2 as pb
from services.common.clock import timestamp
from services.common.errors import DomainError
from services.common.ids import PROVINCES
from services.common.policy import Policy
from services.common.rpc import Deadline, error_from_rpc
from services.settlement.bill import PremiumOrder
from services.settlement.convert import premium_pb
from services.settlement.coordinator import Coordinator

# What makes one auto-pay's premium impossible now; the job lists it and goes on. Anything else
# (a part of the stack down) stops the run, which is then safe to run again.
SKIPPED = frozenset({
    "INSUFFICIENT_FUNDS", "NOT_BOUND", "ACCOUNT_SUSPENDED", "INSURANCE_STOPPED",
    "ACCOUNT_CLOSED", "BENEFICIARY_NOT_RESIDENT", "NO_PERSONAL_ACCOUNT", "ACCOUNT_NOT_FOUND",
})  # fmt: skip


def _key(beneficiary: str) -> str:
    return f"setl:{{autopay:{beneficiary[:2]}}}"


@dataclasses.dataclass(frozen=True)
class AutoPay:
    beneficiary_id: str
    payer_id: str
    enabled: bool
    updated_ms: int

    def pb(self) -> pb.PremiumAutoPay:
        return pb.PremiumAutoPay(
            beneficiary_id=self.beneficiary_id, payer_id=self.payer_id, enabled=self.enabled,
            updated_at=timestamp(self.updated_ms),
        )  # fmt: skip


class AutoPays:
    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis

    async def put(self, a: AutoPay) -> None:
        await self.redis.hset(_key(a.beneficiary_id), a.beneficiary_id, orjson.dumps(a))

    async def get(self, beneficiary: str) -> AutoPay:
        found = await self.find(beneficiary)
        if found is None:
            raise DomainError("AUTO_PAY_NOT_FOUND", "no auto-pay for this beneficiary")
        return found

    async def find(self, beneficiary: str) -> AutoPay | None:
        raw = await self.redis.hget(_key(beneficiary), beneficiary)
        return None if raw is None else AutoPay(**orjson.loads(raw))

    async def enabled(self) -> AsyncIterator[AutoPay]:
        for province in sorted(PROVINCES):
            found = self.redis.hscan_iter(f"setl:{{autopay:{province:02d}}}", count=500)
            async for _, raw in cast(AsyncIterator[tuple[str, str]], found):
                a = AutoPay(**orjson.loads(raw))
                if a.enabled:
                    yield a


class Deductions:
    """One run of the month-end job."""

    def __init__(self, coordinator: Coordinator, autopays: AutoPays, policy: Policy) -> None:
        self.coordinator, self.autopays, self.policy = coordinator, autopays, policy

    async def premium(self, beneficiary: str, deadline: Deadline) -> int:
        """The premium of the province the beneficiary is insured in."""
        found = await self.coordinator.accounts.accounts([beneficiary], deadline.left())
        region = found[beneficiary].region_code if beneficiary in found else ""
        return self.policy.for_region(region).resident_premium_fen

    async def run(
        self, run_id: str, year: int, today: str, started_ms: int, deadline: Deadline
    ) -> pb.PremiumDeductionRun:
        done = pb.PremiumDeductionRun(run_id=run_id, year=year)
        async for a in self.autopays.enabled():
            order = PremiumOrder(a.payer_id, a.beneficiary_id, year,
                                 await self.premium(a.beneficiary_id, deadline))  # fmt: skip
            try:
                paid = await self.coordinator.pay_premium(
                    order, f"autopay:{a.beneficiary_id}:{year}", today, deadline
                )
            except grpc.aio.AioRpcError as e:
                reason = error_from_rpc(e).reason
                # The run's payment id is the beneficiary's and the year's: a payment under it
                # with other content was an earlier run's, from another payer or of another
                # amount: the year is paid.
                if reason in ("PREMIUM_ALREADY_PAID", "IDEMPOTENCY_CONFLICT"):
                    done.already_paid += 1
                elif reason in SKIPPED:
                    skip = pb.PremiumSkip(
                        beneficiary_id=a.beneficiary_id, payer_id=a.payer_id, reason=reason
                    )
                    done.skipped.append(skip)
                else:
                    raise
                continue
            if _ms(paid) < started_ms:  # made by an earlier run
                done.already_paid += 1
            else:
                done.paid += 1
                done.payments.append(premium_pb(paid))
        return done


def _ms(payment: apb.Payment) -> int:
    return payment.paid_at.seconds * 1000 + payment.paid_at.nanos // 1_000_000
