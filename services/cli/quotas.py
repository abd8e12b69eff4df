"""`gongji quota`, `gongji clearing` and `gongji reconcile`: aid quotas across provinces (N1-N5)
as counter staff (operator token) or the citizen himself (--citizen); the monthly clearing
between provinces (N6) and an institution's daily reconciliation (N7), as finance reads them."""

from __future__ import annotations

from typing import Annotated

import typer

from gongji.binding.v1 import binding_pb2 as bpb
from gongji.settlement.v1 import settlement_pb2 as spb
from services.cli import show
from services.cli.bindings import RELATIONSHIPS, Citizen
from services.cli.session import fen, request_id, run
from services.client import Client
from services.common.ids import mask

quota = typer.Typer(no_args_is_help=True, help="Aid quotas for close relatives anywhere (N1-N5).")

QuotaId = Annotated[str, typer.Argument(help="the quota's id (Q…)")]
Amount = Annotated[str, typer.Option(help="yuan")]


@quota.command()
def grant(
    funder: Annotated[str, typer.Argument(help="the employee whose account sets it aside")],
    relative: Annotated[str, typer.Argument(help="the close relative it is for, any province")],
    relationship: Annotated[str, typer.Option("--as", help=", ".join(RELATIONSHIPS))],
    amount: Amount,
    citizen: Citizen = "",
) -> None:
    """Set an amount aside for a relative (共济额度): his bills anywhere draw on it after his own
    account. Made by the funder himself (--citizen FUNDER) for an adult, it waits for the
    relative's `gongji quota confirm`."""
    if relationship not in RELATIONSHIPS:
        raise typer.BadParameter(f"--as must be one of {', '.join(RELATIONSHIPS)}")
    asked = bpb.GrantQuotaRequest(
        funder_id=funder, relative_id=relative, relationship=RELATIONSHIPS[relationship],
        amount_fen=fen(amount), request_id=request_id(),
    )  # fmt: skip

    async def go(c: Client) -> None:
        made = await c.binding.GrantQuota(asked)
        show.console.print(show.quotas("granted", [made]))
        if made.status == bpb.QUOTA_STATUS_PENDING_CONSENT:
            show.console.print(
                f"waits for {mask(relative)} to confirm within 7 days: gongji "
                f"quota confirm {made.quota_id} --citizen <the relative's id>"
            )

    run(go, citizen)


@quota.command()
def change(quota_id: QuotaId, amount: Amount, citizen: Citizen = "") -> None:
    """The quota's new total: never below what is used; a raise needs the money available."""
    asked = bpb.ChangeQuotaRequest(quota_id=quota_id, amount_fen=fen(amount),
                                   request_id=request_id())  # fmt: skip

    async def go(c: Client) -> None:
        show.console.print(show.quotas("changed", [await c.binding.ChangeQuota(asked)]))

    run(go, citizen)


@quota.command()
def end(quota_id: QuotaId, citizen: Citizen = "") -> None:
    """End a quota (the funder or the relative): what remains is the funder's to spend again."""
    asked = bpb.EndQuotaRequest(quota_id=quota_id, request_id=request_id())

    async def go(c: Client) -> None:
        show.console.print(show.quotas("ended", [await c.binding.EndQuota(asked)]))

    run(go, citizen)


@quota.command()
def confirm(quota_id: QuotaId, citizen: Citizen = "") -> None:
    """The relative's yes to a quota granted him (B14): set aside and his from now on."""
    asked = bpb.ConfirmQuotaRequest(quota_id=quota_id, request_id=request_id())

    async def go(c: Client) -> None:
        show.console.print(show.quotas("confirmed", [await c.binding.ConfirmQuota(asked)]))

    run(go, citizen)


@quota.command("list")
def list_(
    funder: Annotated[str, typer.Option(help="quotas this person granted")] = "",
    relative: Annotated[str, typer.Option(help="quotas granted to this person")] = "",
    all_: Annotated[bool, typer.Option("--all", help="ended ones too")] = False,
    citizen: Citizen = "",
) -> None:
    """A person's quotas, oldest first (the order his bills draw on them)."""
    asked = bpb.ListQuotasRequest(funder_id=funder, relative_id=relative, include_ended=all_)

    async def go(c: Client) -> None:
        show.console.print(show.quotas("quotas", (await c.binding.ListQuotas(asked)).quotas))

    run(go, citizen)


def clearing(month: Annotated[str, typer.Argument(help="YYYY-MM (Beijing)")]) -> None:
    """The month's clearing statement between provinces (清算, N6): quota money spent in
    another province than its funder's, per pair of provinces, net of refunds that month."""
    asked = spb.GetClearingStatementRequest(month=month)

    async def go(c: Client) -> None:
        show.console.print(show.clearing(await c.settlement.GetClearingStatement(asked)))

    run(go)


_TOTALS = ("settlements", "cancellations", "medfee", "fund", "acct", "mulaid", "cash")


def _theirs(text: str) -> spb.DayTotals:
    """`settlements=3,cancellations=1,medfee=120.00,...`: counts, and amounts in yuan (a
    leading - for a net refund)."""
    out = spb.DayTotals()
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, value = part.partition("=")
        if name not in _TOTALS or not value:
            raise typer.BadParameter(f"{part!r}: name=value with a name of {', '.join(_TOTALS)}")
        sign = -1 if value.startswith("-") else 1
        if name in ("settlements", "cancellations"):
            if not value.lstrip("-").isdigit():
                raise typer.BadParameter(f"{name} must be a whole number")
            setattr(out, name, int(value))
        else:
            field = {
                "medfee": "medfee_total_fen",
                "fund": "fund_pay_fen",
                "acct": "acct_pay_fen",
                "mulaid": "acct_mulaid_pay_fen",
                "cash": "cash_pay_fen",
            }[name]
            setattr(out, field, sign * fen(value.lstrip("-")))
    return out


def reconcile(
    institution: Annotated[str, typer.Argument(help="designated institution id")],
    date: Annotated[str, typer.Argument(help="YYYY-MM-DD (Beijing)")],
    theirs: Annotated[str, typer.Option(help="the institution's own figures: settlements=N,"
                                             "cancellations=N,medfee=Y,fund=Y,acct=Y,mulaid=Y,"
                                             "cash=Y (yuan)")] = "",
) -> None:  # fmt: skip
    """An institution's day as the centre counts it (对账, N7), and with --theirs the
    comparison field by field."""
    asked = spb.ReconcileDayRequest(institution_id=institution, date=date,
                                    totals=_theirs(theirs))  # fmt: skip

    async def go(c: Client) -> None:
        show.console.print(show.reconciliation(await c.settlement.ReconcileDay(asked),
                                               compared=bool(theirs)))  # fmt: skip

    run(go)
