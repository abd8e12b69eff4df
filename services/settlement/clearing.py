"""Clearing between provinces (N6) and an institution's daily reconciliation (N7).

Both are read from the lists the account service keeps beside the payments' records (every
settlement in its institution's Beijing day, settled `+` and cancelled or reversed `-`; a
settlement with a quota share across provinces also in its month's clearing list), written in
the same step as the settlement or its cancel, so that a day or month that is over never changes
(services.account.quotas). Nothing is recorded here: these are reads.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from gongji.account.v1 import account_pb2 as apb
from gongji.settlement.v1 import settlement_pb2 as pb
from services.common import ids
from services.common.clock import beijing_today
from services.common.errors import DomainError
from services.common.rpc import Deadline
from services.settlement.bill import Bill

Context = Any
_PAGE = 1000


@dataclasses.dataclass
class Period:
    """A day's or month's settlements, as listed, and whether the list is final."""

    settled: list[apb.Payment]
    cancelled: list[apb.Payment]
    final: bool


def clearing_rows(period: Period) -> list[pb.ClearingRow]:
    """N6: per (funder's province, institution's province), the quota legs settled in the month
    less those refunded in it, where the two provinces differ; sorted by the two codes."""
    rows: dict[tuple[str, str], list[int]] = {}
    for sign, payments in ((1, period.settled), (-1, period.cancelled)):
        for p in payments:
            institution_province = p.institution_id[1:3]
            for s in p.shares:
                if not s.quota_id or s.payer_province == institution_province:
                    continue
                row = rows.setdefault((s.payer_province, institution_province), [0, 0])
                row[0] += sign
                row[1] += sign * s.amount_fen
    return [
        pb.ClearingRow(funder_province=fp, institution_province=ip, legs=legs, amount_fen=amount)
        for (fp, ip), (legs, amount) in sorted(rows.items())
    ]


def day_totals(period: Period) -> pb.DayTotals:
    """N7: the day's settlements (+) and its cancellations and reversals (-), each by the
    bill's figures and the legs paid: own account, family aid and quotas, cash."""
    out = pb.DayTotals()
    for sign, payments in ((1, period.settled), (-1, period.cancelled)):
        for p in payments:
            bill = Bill.from_details(p.details)
            own = sum(s.amount_fen for s in p.shares if s.own_account)
            aid = sum(s.amount_fen for s in p.shares if not s.own_account)
            if sign > 0:
                out.settlements += 1
            else:
                out.cancellations += 1
            out.medfee_total_fen += sign * bill.medfee_total_fen
            out.fund_pay_fen += sign * bill.fund_pay_fen
            out.acct_pay_fen += sign * own
            out.acct_mulaid_pay_fen += sign * aid
            out.cash_pay_fen += sign * (bill.personal_burden_fen - own - aid)
    return out


class ClearingMethods:
    """GetClearingStatement and ReconcileDay for the settlement servicer."""

    coordinator: Any
    clock: Any

    async def GetClearingStatement(
        self, request: pb.GetClearingStatementRequest, context: Context
    ) -> pb.ClearingStatement:
        first = ids.month(request.month, "month")
        if first > beijing_today(self.clock):
            raise DomainError("INVALID_DATE", "month must not be later than the current month")
        period = await self._read(apb.ListClearingPaymentsRequest(month=request.month), context)
        return pb.ClearingStatement(month=request.month, final=period.final,
                                    rows=clearing_rows(period))  # fmt: skip

    async def ReconcileDay(
        self, request: pb.ReconcileDayRequest, context: Context
    ) -> pb.Reconciliation:
        institution = ids.institution_id(request.institution_id)
        day = ids.date(request.date, "date")
        if day > beijing_today(self.clock):
            raise DomainError("INVALID_DATE", "date must not be in the future")
        query = apb.ListDayPaymentsRequest(institution_id=institution, date=day.isoformat())
        period = await self._read(query, context)
        ours = day_totals(period)
        return pb.Reconciliation(
            institution_id=institution, date=day.isoformat(), matches=ours == request.totals,
            final=period.final, ours=ours, theirs=request.totals,
        )  # fmt: skip

    async def _read(
        self, query: apb.ListDayPaymentsRequest | apb.ListClearingPaymentsRequest,
        context: Context,
    ) -> Period:  # fmt: skip
        """Every page of the list, in order; final only if every page was read final."""
        deadline = Deadline.of(context)
        period = Period([], [], True)
        query.limit, query.offset = _PAGE, 0
        while True:
            page = await self.coordinator.accounts.day_payments(query, deadline.left())
            period.settled += page.settled
            period.cancelled += page.cancelled
            period.final = period.final and page.final
            if not page.more:
                return period
            query.offset += _PAGE
