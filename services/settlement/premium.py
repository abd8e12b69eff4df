"""Paying a relative's resident premium from one's account (rule A2): one account, the whole
premium, one payment per beneficiary per coverage year, through the same lock and hold path."""

from __future__ import annotations

import secrets

import grpc

from gongji.account.v1 import account_pb2 as apb
from gongji.settlement.v1 import settlement_pb2 as pb
from services.account.convert import timestamp
from services.common.errors import DomainError
from services.common.rpc import error_from_rpc
from services.settlement.coordinator import PEER_TIMEOUT_S, Coordinator, now_ms

RESIDENT = 2


class Premiums:
    def __init__(self, coordinator: Coordinator) -> None:
        self.c = coordinator

    async def pay(
        self, payer: str, beneficiary: str, year: int, amount: int, today: str, wait_s: float
    ) -> pb.PremiumPayment:
        found = await self.c.accounts.accounts([beneficiary], PEER_TIMEOUT_S)
        if beneficiary not in found:
            raise DomainError("ACCOUNT_NOT_FOUND", "the beneficiary is not registered")
        if found[beneficiary].insurance_type != RESIDENT:
            raise DomainError("BENEFICIARY_NOT_RESIDENT", "only resident premiums are paid so")
        payers = await self.c.bindings.payers(beneficiary, today, PEER_TIMEOUT_S)
        if payer not in {p.binder_id for p in payers}:
            raise DomainError("NOT_BOUND", "the payer has no binding to the beneficiary today")
        payment_id = "P" + secrets.token_hex(12)
        if await self.c.store.premium_paid(beneficiary, year, payment_id) is not None:
            raise DomainError("PREMIUM_ALREADY_PAID", f"the {year} premium is already paid")
        try:
            entry = await self._debit(payer, amount, payment_id, wait_s)
        except (DomainError, grpc.aio.AioRpcError) as e:
            await self.c.store.premium_unclaim(beneficiary, year, payment_id)
            raise (e if isinstance(e, DomainError) else error_from_rpc(e)) from None
        return pb.PremiumPayment(
            payment_id=payment_id, payer_id=payer, beneficiary_id=beneficiary, year=year,
            amount_fen=amount, entry_id=entry.entry_id, paid_at=timestamp(now_ms()),
        )  # fmt: skip

    async def _debit(
        self, payer: str, amount: int, payment_id: str, wait_s: float
    ) -> apb.LedgerEntry:
        async with self.c.locks.hold([payer], wait_s) as held:
            hold = apb.HoldSpec(hold_id=f"{payment_id}:0", person_id=payer, amount_fen=amount,
                                fencing_token=held.fences[payer])  # fmt: skip
            await self.c.accounts.place(
                [hold], apb.ENTRY_KIND_PREMIUM, payment_id, f"{payment_id}:place", PEER_TIMEOUT_S
            )
            ref = apb.HoldRef(hold_id=hold.hold_id, person_id=payer)
            entries = await self.c.accounts.commit([ref], f"{payment_id}:commit", PEER_TIMEOUT_S)
        return entries[0]
