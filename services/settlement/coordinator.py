"""Settlements and premiums, each one call to the account service (docs/ARCHITECTURE.md, "A
Settle, through the code").

Settle is one PayFromAccounts call: the account service claims the key (the payment id is
derived from it), checks the patient (S5), takes the payers in the order the binding service
keeps there (B10), checks every payer's status and family-aid grant at that moment (S4), debits
every share and writes the payment's record with the bill, or refuses and changes nothing. On
one Redis that is one script; under a Redis Cluster the same steps run under the family's
locks, and what a crash leaves there is finished by a retry of the key or by the account
service's recovery loop. Cancel and reversal are one call each too. So a crash, or a caller who
gives up, at any point leaves a payment made or not made, never half of one: a retry of the same
key finds the answer, and this service has nothing to recover.
"""

from __future__ import annotations

from gongji.account.v1 import account_pb2 as apb
from services.account.client import AccountClient
from services.common.enums import EntryKind, PaymentState
from services.common.errors import DomainError
from services.common.rpc import Deadline
from services.settlement.bill import Bill, PremiumOrder, settlement_id


class Coordinator:
    def __init__(self, accounts: AccountClient) -> None:
        self.accounts = accounts

    async def quote(self, bill: Bill, deadline: Deadline) -> apb.Payment:
        """S6: the split a settlement would make now; moves nothing, records nothing."""
        return await self._pay(bill, deadline, quote=True)

    async def settle(self, bill: Bill, deadline: Deadline) -> apb.Payment:
        """S2-S5, S8, S11, S12: the payment made and recorded, or its record if it was made."""
        return await self._pay(bill, deadline, quote=False)

    async def _pay(self, bill: Bill, deadline: Deadline, quote: bool) -> apb.Payment:
        # Who may pay, in priority order (S2, S3): the own account, then, when the patient takes
        # family aid, his payers 1, 2, 3; whoever may not pay at that moment is skipped (S4).
        own = [apb.PaySource(person_id=bill.patient_id)] if bill.use_personal_account else []
        return await self.accounts.pay(
            bill.settlement_id, EntryKind.SETTLEMENT, bill.patient_id, own,
            bill.personal_burden_fen, bill.service_date, deadline.left(), quote=quote,
            family_aid=bill.use_personal_account and bill.use_family_aid,
            details=bill.details(), institution_id=bill.institution_id,
        )  # fmt: skip

    async def settlement(self, sid: str, deadline: Deadline) -> apb.Payment:
        found = await self.accounts.payment(sid, deadline.left())
        if EntryKind(found.kind) != EntryKind.SETTLEMENT:
            raise DomainError("SETTLEMENT_NOT_FOUND", "no such settlement")
        return found

    async def cancel(
        self, sid: str, reason: str, request_id: str, deadline: Deadline
    ) -> apb.Payment:
        """S9: every leg refunded to its own account, once, with the record, in one step."""
        return await self.accounts.cancel(sid, reason, request_id, deadline.left())

    async def reverse(
        self, institution_id: str, medins_setl_id: str, request_id: str, deadline: Deadline
    ) -> apb.Payment | None:
        """S10: a key that never arrived is refused for good (None); one that did is cancelled."""
        sid = settlement_id(institution_id, medins_setl_id)
        found = await self.accounts.reverse(sid, request_id, deadline.left())
        return None if PaymentState(found.state) == PaymentState.REVERSED else found

    async def pay_premium(
        self, order: PremiumOrder, marker: str, today: str, deadline: Deadline,
        quote: bool = False, from_quota: bool = False,
    ) -> apb.Payment:  # fmt: skip
        """A2, N5: one source pays the whole premium; one payment per beneficiary, kind and
        year. With `from_quota`, the payer's aid quota for the beneficiary when it covers it;
        else the payer pays his own premium, or a relative's under a binding valid today: the
        account service finds that binding (and those quotas) in the beneficiary's order.
        `quote`: checked as it would be paid, nothing paid."""
        return await self.accounts.pay(
            order.payment_id(marker), EntryKind.PREMIUM, order.beneficiary_id,
            [apb.PaySource(person_id=order.payer_id)], order.amount_fen, today, deadline.left(),
            quote=quote, details=order.details(), premium_year=order.year,
            premium_kind=order.kind, from_quota=from_quota,
        )  # fmt: skip
