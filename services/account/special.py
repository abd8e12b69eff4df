"""Commercial insurance (A3), withdrawal (A4), moving the account (A5), stopping insurance and
changing its type (A9).

The deductions here take the account's lock, which payments under Redis Cluster take too, so a
payment's plan is never overtaken, and pass its fencing token to the script, which refuses it
once another holder has taken the lock over (locks.py).
"""

from __future__ import annotations

from gongji.account.v1 import account_pb2 as pb
from services.account.base import Context, ServicerBase
from services.account.convert import account_pb, entry_pb
from services.common import ids
from services.common.clock import beijing_today
from services.common.enums import (
    STOP_FOR_WITHDRAWAL,
    AccountStatus,
    CommercialInsuranceKind,
    EntryKind,
    InsuranceType,
    StopReason,
    WithdrawalReason,
)
from services.common.errors import DomainError
from services.common.rpc import remaining

_WITHDRAWAL_REASONS = frozenset(WithdrawalReason)


class SpecialMethods(ServicerBase):
    async def PurchaseCommercialInsurance(
        self, request: pb.PurchaseCommercialInsuranceRequest, context: Context
    ) -> pb.LedgerEntry:
        pid = self._pid(request.person_id)
        amount = ids.amount(request.amount_fen)
        insurer = ids.token(request.insurer_code, "insurer_code")
        policy_no = ids.token(request.policy_no, "policy_no")
        partner = self.registry.partner(insurer)  # judged after the account's own refusals
        kind = ids.enum_value(
            request.kind or CommercialInsuranceKind.HEALTH, set(CommercialInsuranceKind), "kind"
        )

        async def run(fp: str, marker: str) -> pb.LedgerEntry:
            async with self.locks.hold([pid], remaining(context)) as held:
                account = await self.store.get(pid)
                ratio = self.policy.for_region(account.region_code).commercial_ratio_percent
                year = beijing_today(self.clock).year
                entry = await self.store.purchase(
                    pid, amount, ratio, insurer, policy_no, held.fences[pid], year, partner,
                    kind, fp, marker,
                )  # fmt: skip
            return entry_pb(entry)

        return await self.requests.once(
            "PurchaseCommercialInsurance", request, pb.LedgerEntry, run, context
        )

    async def CancelCommercialInsurance(
        self, request: pb.CancelCommercialInsuranceRequest, context: Context
    ) -> pb.LedgerEntry:
        pid = self._pid(request.person_id)
        policy_no = ids.token(request.policy_no, "policy_no")

        async def run(fp: str, marker: str) -> pb.LedgerEntry:
            return entry_pb(await self.store.cancel_policy(pid, policy_no, fp, marker))

        return await self.requests.once(
            "CancelCommercialInsurance", request, pb.LedgerEntry, run, context
        )

    async def WithdrawBalance(
        self, request: pb.WithdrawBalanceRequest, context: Context
    ) -> pb.LedgerEntry:
        pid = self._pid(request.person_id)
        if request.reason == 0:
            raise DomainError(
                "WITHDRAWAL_NOT_ALLOWED",
                "withdrawal is allowed only on death, emigration or giving up employee insurance",
            )
        reason = ids.enum_value(request.reason, _WITHDRAWAL_REASONS, "reason")
        stop = STOP_FOR_WITHDRAWAL[WithdrawalReason(reason)]
        payee = ids.text(request.payee, "payee")

        async def run(fp: str, marker: str) -> pb.LedgerEntry:
            async with self.locks.hold([pid], remaining(context)) as held:
                change = self.store.close(
                    pid,
                    AccountStatus.CLOSED,
                    EntryKind.WITHDRAWAL,
                    payee,
                    held.fences[pid],
                    stop,
                    fp,
                    marker,
                )
                entry, _ = await self._announcing(pid, change)
            if entry is None:  # residents are refused by the script before this
                raise DomainError("NO_PERSONAL_ACCOUNT", "no personal account")
            return entry_pb(entry)

        return await self.requests.once("WithdrawBalance", request, pb.LedgerEntry, run, context)

    async def TransferAccount(
        self, request: pb.TransferAccountRequest, context: Context
    ) -> pb.Account:
        pid = self._pid(request.person_id)
        to_region = ids.region_code(request.to_region_code, "to_region_code")
        payee = ids.text(request.payee, "payee", required=False)
        receives = self.policy.for_region(to_region).accepts_transfers

        async def run(fp: str, marker: str) -> pb.Account:
            async with self.locks.hold([pid], remaining(context)) as held:
                account = await self.store.get(pid)
                if ids.province(account.region_code) == ids.province(to_region):
                    moved = await self._announcing(pid, self.store.move(pid, to_region, fp, marker))
                    return account_pb(moved)
                # The other province cannot receive the balance: it is paid to the person (A5).
                kind, to = (EntryKind.TRANSFER_OUT, to_region) if receives else (
                    EntryKind.WITHDRAWAL, ids.text(payee, "payee"))  # fmt: skip
                change = self.store.close(
                    pid, AccountStatus.TRANSFERRED_OUT, kind, to, held.fences[pid], None, fp,
                    marker,
                )  # fmt: skip
                _, account = await self._announcing(pid, change)
            return account_pb(account)

        return await self.requests.once("TransferAccount", request, pb.Account, run, context)

    async def StopInsurance(self, request: pb.StopInsuranceRequest, context: Context) -> pb.Account:
        pid = self._pid(request.person_id)
        reason = ids.enum_value(request.reason, set(StopReason), "reason")

        async def run(fp: str, marker: str) -> pb.Account:
            async with self.locks.hold([pid], remaining(context)):  # S4: never under a plan
                change = self.store.stop(pid, reason, fp, marker)
                return account_pb(await self._announcing(pid, change))

        return await self.requests.once("StopInsurance", request, pb.Account, run, context)

    async def ChangeInsuranceType(
        self, request: pb.ChangeInsuranceTypeRequest, context: Context
    ) -> pb.Account:
        pid = self._pid(request.person_id)
        new_type = ids.enum_value(request.insurance_type, set(InsuranceType), "insurance_type")

        async def run(fp: str, marker: str) -> pb.Account:
            async with self.locks.hold([pid], remaining(context)):  # S4: never under a plan
                change = self.store.change_type(pid, new_type, fp, marker)
                return account_pb(await self._announcing(pid, change))

        return await self.requests.once("ChangeInsuranceType", request, pb.Account, run, context)
