"""How the CLI shows gongji's records: rich tables, money in yuan, person ids masked."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

from gongji.account.v1 import account_pb2 as apb
from gongji.binding.v1 import binding_pb2 as bpb
from gongji.common.v1 import common_pb2
from gongji.settlement.v1 import settlement_pb2 as spb
from services.common.clock import BEIJING
from services.common.ids import mask

console = Console(highlight=False)


def yuan(fen: int) -> str:
    sign = "-" if fen < 0 else ""
    return f"{sign}¥{abs(fen) // 100:,}.{abs(fen) % 100:02d}"


def _name(enum: Any, number: int, prefix: str) -> str:
    return str(enum.Name(number)).removeprefix(prefix).lower().replace("_", " ")


MONEY = frozenset({"balance", "available", "amount", "balance after", "burden",
                   "accounts", "cash"})  # fmt: skip


def table(title: str, columns: Sequence[str], rows: Iterable[Sequence[str]]) -> Table:
    """Money columns (in yuan) and counts align right; person ids never wrap."""
    shown = Table(title=title, title_justify="left", title_style="bold")
    for column in columns:
        right = column in MONEY or column == "#"
        shown.add_column(column, justify="right" if right else "left", no_wrap=right or (
            column in ("person", "when")))  # fmt: skip
    for row in rows:
        shown.add_row(*row)
    return shown


def accounts(title: str, found: Iterable[apb.Account], who: dict[str, str] | None = None) -> Table:
    who = who or {}
    return table(
        f"{title} (¥)",
        ["who", "person", "insurance", "status", "balance", "available"],
        [
            [who.get(a.person_id, a.name), mask(a.person_id),
             _name(common_pb2.InsuranceType, a.insurance_type, "INSURANCE_TYPE_"),
             _name(apb.AccountStatus, a.status, "ACCOUNT_STATUS_")
             + (f", stopped: {_name(apb.StopReason, a.stopped_reason, 'STOP_REASON_')}"
                if a.stopped_reason else ""),
             yuan(a.balance_fen), yuan(a.available_fen)]
            for a in found
        ],
    )  # fmt: skip


def entries(title: str, found: Iterable[apb.LedgerEntry]) -> Table:
    return table(
        f"{title} (¥, newest first, UTC)",
        ["when", "kind", "amount", "balance after", "reference"],
        [
            [e.created_at.ToDatetime().strftime("%m-%d %H:%M:%S"),
             _name(apb.EntryKind, e.kind, "ENTRY_KIND_"), yuan(e.amount_fen),
             yuan(e.balance_after_fen), e.reference]
            for e in found
        ],
    )  # fmt: skip


def bindings(title: str, found: Iterable[bpb.Binding], who: dict[str, str] | None = None) -> Table:
    who = who or {}
    return table(
        title,
        ["binding", "binder", "beneficiary", "relationship", "from", "to", "status", "#"],
        [
            [b.binding_id, who.get(b.binder_id, mask(b.binder_id)),
             who.get(b.beneficiary_id, mask(b.beneficiary_id)),
             _name(common_pb2.Relationship, b.relationship, "RELATIONSHIP_"), b.start_date,
             b.end_date or "—", _name(bpb.BindingStatus, b.status, "BINDING_STATUS_"),
             str(b.priority)]
            for b in found
        ],
    )  # fmt: skip


def payers(title: str, found: Iterable[bpb.Payer], who: dict[str, str] | None = None) -> Table:
    who = who or {}
    return table(
        title,
        ["#", "payer", "binding"],
        [[str(p.priority), who.get(p.binder_id, mask(p.binder_id)), p.binding_id] for p in found],
    )


def settlement(s: spb.Settlement, who: dict[str, str] | None = None) -> Table:
    who = who or {}
    status = _name(spb.SettlementStatus, s.status, "SETTLEMENT_STATUS_")
    shown = table(
        f"settlement {s.settlement_id} ({status}, ¥)\n{s.institution_id}, bill {s.medins_setl_id}",
        ["paid by", "from", "amount", "balance after"],
        [
            [who.get(leg.payer_id, mask(leg.payer_id)),
             _name(spb.LegKind, leg.kind, "LEG_KIND_"), yuan(leg.amount_fen),
             yuan(leg.balance_after_fen)]
            for leg in s.legs
        ],
    )  # fmt: skip
    shown.add_row("cash", "at the counter", yuan(s.cash_pay_fen), "")
    shown.caption = (
        f"medical fees {yuan(s.medfee_total_fen)} · fund {yuan(s.fund_pay_fen)} · personal burden "
        f"{yuan(s.personal_burden_fen)} = own account {yuan(s.acct_pay_fen)} + family aid "
        f"{yuan(s.acct_mulaid_pay_fen)} + cash {yuan(s.cash_pay_fen)}"
    )
    return shown


def settlements(
    title: str, found: Iterable[spb.Settlement], who: dict[str, str] | None = None
) -> Table:
    who = who or {}
    return table(
        f"{title} (¥)",
        ["settlement", "status", "patient", "institution", "burden", "accounts", "cash"],
        [
            [s.settlement_id, _name(spb.SettlementStatus, s.status, "SETTLEMENT_STATUS_"),
             who.get(s.patient_id, mask(s.patient_id)), s.institution_id,
             yuan(s.personal_burden_fen), yuan(s.acct_pay_fen + s.acct_mulaid_pay_fen),
             yuan(s.cash_pay_fen)]
            for s in found
        ],
    )  # fmt: skip


def premium(p: spb.PremiumPayment, who: dict[str, str] | None = None) -> Table:
    who = who or {}
    kind = _name(spb.PremiumKind, p.kind or spb.PREMIUM_KIND_RESIDENT_MEDICAL, "PREMIUM_KIND_")
    return table(
        f"{kind} premium {p.year} (¥)",
        ["payment", "paid by", "for", "amount", "from"],
        [[p.payment_id, who.get(p.payer_id, mask(p.payer_id)),
          who.get(p.beneficiary_id, mask(p.beneficiary_id)), yuan(p.amount_fen),
          f"quota {p.quota_id}" if p.quota_id else "account"]],
    )  # fmt: skip


def quotas(title: str, found: Iterable[bpb.Quota], who: dict[str, str] | None = None) -> Table:
    who = who or {}
    return table(
        f"{title} (¥)",
        ["quota", "funder", "relative", "relationship", "granted", "used", "remaining",
         "status"],
        [
            [q.quota_id, who.get(q.funder_id, mask(q.funder_id)),
             who.get(q.relative_id, mask(q.relative_id)),
             _name(common_pb2.Relationship, q.relationship, "RELATIONSHIP_"),
             yuan(q.granted_fen), yuan(q.used_fen), yuan(q.remaining_fen),
             _name(bpb.QuotaStatus, q.status, "QUOTA_STATUS_")
             + (f": {_name(bpb.QuotaEndReason, q.end_reason, 'QUOTA_END_REASON_')}"
                if q.end_reason else "")]
            for q in found
        ],
    )  # fmt: skip


def clearing(c: spb.ClearingStatement) -> Table:
    state = "final" if c.final else "the month is not over: may still change"
    shown = table(
        f"clearing statement {c.month} ({state}, ¥)",
        ["funder's province", "spent in", "legs", "amount"],
        [[r.funder_province, r.institution_province, str(r.legs), yuan(r.amount_fen)]
         for r in c.rows],
    )  # fmt: skip
    shown.caption = (
        f"{sum(r.legs for r in c.rows)} legs, {yuan(sum(r.amount_fen for r in c.rows))} to clear"
        if c.rows
        else "nothing spent across provinces"
    )
    return shown


_DAY_FIELDS = (
    ("settlements", "settlements", False), ("cancellations", "cancellations", False),
    ("medical fees", "medfee_total_fen", True), ("fund", "fund_pay_fen", True),
    ("own accounts", "acct_pay_fen", True), ("family aid", "acct_mulaid_pay_fen", True),
    ("cash", "cash_pay_fen", True),
)  # fmt: skip


def reconciliation(r: spb.Reconciliation, compared: bool) -> Table:
    state = "final" if r.final else "the day is not over: may still change"

    def shown(totals: spb.DayTotals, name: str, money: bool) -> str:
        value = getattr(totals, name)
        return yuan(value) if money else str(value)

    columns = ["", "ours", "theirs", ""] if compared else ["", "ours"]
    rows = []
    for label, name, money in _DAY_FIELDS:
        row = [label, shown(r.ours, name, money)]
        if compared:
            same = getattr(r.ours, name) == getattr(r.theirs, name)
            row += [shown(r.theirs, name, money), "=" if same else "differs"]
        rows.append(row)
    out = table(f"{r.institution_id} on {r.date} ({state}, ¥)", columns, rows)
    if compared:
        out.caption = "all figures match" if r.matches else "the figures do not match"
    return out


def contribution(c: apb.Contribution) -> Table:
    return table(
        f"contribution {c.month} (¥)",
        ["person", "base", "employee", "employer", "paid by", "region", "allocation", "back pay"],
        [[mask(c.person_id), yuan(c.base_fen), yuan(c.employee_fen), yuan(c.employer_fen),
          _name(apb.ContributionPayer, c.payer, "CONTRIBUTION_PAYER_"), c.region_code,
          yuan(c.allocation_fen), "yes" if c.back_payment else "no"]],
    )  # fmt: skip


def contribution_record(r: apb.ContributionRecord) -> Table:
    gaps = ", ".join(
        g.first_month if g.first_month == g.last_month else f"{g.first_month}…{g.last_month}"
        for g in r.gaps
    )
    return table(
        f"contribution record of {mask(r.person_id)}",
        ["months", "in this city", "full years", "first", "last", "gaps"],
        [[str(r.total_months), str(r.local_months), str(r.full_years), r.first_month or "—",
          r.last_month or "—", gaps or "none"]],
    )  # fmt: skip


def deductions(run: spb.PremiumDeductionRun) -> Table:
    return table(
        f"premium run {run.run_id}, {run.year}: {run.paid} paid, {run.already_paid} paid "
        f"before, {len(run.skipped)} skipped",
        ["resident", "payer", "outcome"],
        [
            *([mask(p.beneficiary_id), mask(p.payer_id), f"paid {yuan(p.amount_fen)}"]
              for p in run.payments),
            *([mask(k.beneficiary_id), mask(k.payer_id), f"skipped: {k.reason}"]
              for k in run.skipped),
        ],
    )  # fmt: skip


def payment_event(e: spb.PaymentEvent) -> str:
    """One watched payment on one line (Beijing time): cursor, when, what, how much, the
    balance after, which settlement, whose bill and where."""
    when = e.occurred_at.ToDatetime(tzinfo=BEIJING).strftime("%Y-%m-%d %H:%M:%S")
    kind = _name(spb.PaymentEventKind, e.kind, "PAYMENT_EVENT_KIND_")
    return (
        f"{e.cursor}  {when}  {kind:<10}  {yuan(e.amount_fen):>11}  balance "
        f"{yuan(e.balance_after_fen)}  {e.settlement_id}  for {mask(e.patient_id)}"
        f"  at {e.institution_id or '—'}"
    )
