"""`gongji settlement` and `gongji premium`: bills at designated institutions, their cancels and
reversals, consumption records, and resident premiums (operator token)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer

from gongji.settlement.v1 import settlement_pb2 as spb
from services.cli import show
from services.cli.session import fen, request_id, run
from services.client import Client
from services.common.clock import SystemClock, beijing_today
from services.common.ids import mask

settlement = typer.Typer(no_args_is_help=True, help="Settle bills; cancel, reverse, read them.")

Institution = Annotated[str, typer.Argument(help="designated institution id, e.g. P43010500003")]
Bill = Annotated[str, typer.Argument(help="the institution's own settlement number")]


def _bill(
    institution: str, bill: str, patient: str, burden: str, fund: str, on: str
) -> spb.SettleRequest:
    return spb.SettleRequest(
        institution_id=institution, medins_setl_id=bill, patient_id=patient,
        credential_type=spb.CREDENTIAL_TYPE_MEDICAL_CODE, credential_holder_id=patient,
        medfee_total_fen=fen(burden) + fen(fund), fund_pay_fen=fen(fund),
        personal_burden_fen=fen(burden),
        service_date=on or beijing_today(SystemClock()).isoformat(),  # always sent, never defaulted
    )  # fmt: skip


Patient = Annotated[str, typer.Argument(help="the patient's resident ID number")]
Burden = Annotated[str, typer.Option(help="personal burden in yuan (accounts, then cash)")]
Fund = Annotated[str, typer.Option(help="what the pooled fund pays, in yuan")]
On = Annotated[str, typer.Option(help="service date YYYY-MM-DD")]


def _show_bill(method: str, asked: spb.SettleRequest) -> None:
    async def go(c: Client) -> None:
        show.console.print(show.settlement(await getattr(c.settlement, method)(asked)))

    run(go)


@settlement.command("pre-settle")
def pre_settle(
    institution: Institution, bill: Bill, patient: Patient, burden: Burden,
    fund: Fund = "0", on: On = "",
) -> None:  # fmt: skip
    """What a bill would take from which account, without taking it."""
    _show_bill("PreSettle", _bill(institution, bill, patient, burden, fund, on))


@settlement.command()
def settle(
    institution: Institution, bill: Bill, patient: Patient, burden: Burden,
    fund: Fund = "0", on: On = "",
) -> None:  # fmt: skip
    """Settle a bill: own account, then the family's payers in order, then cash. Settling the
    same institution and bill again answers with the first settlement."""
    _show_bill("Settle", _bill(institution, bill, patient, burden, fund, on))


@settlement.command()
def cancel(
    settlement_id: Annotated[str, typer.Argument(help="S… id from settle")],
    reason: Annotated[str, typer.Option(help="why")],
) -> None:
    """Cancel a settlement: every account leg is refunded."""
    asked = spb.CancelSettlementRequest(settlement_id=settlement_id, reason=reason,
                                        request_id=request_id())  # fmt: skip

    async def go(c: Client) -> None:
        show.console.print(show.settlement(await c.settlement.CancelSettlement(asked)))

    run(go)


@settlement.command()
def reverse(institution: Institution, bill: Bill) -> None:
    """Reverse an institution's bill (冲正), whether or not it was settled."""
    asked = spb.ReverseSettlementRequest(institution_id=institution, medins_setl_id=bill,
                                         request_id=request_id())  # fmt: skip

    async def go(c: Client) -> None:
        answer = await c.settlement.ReverseSettlement(asked)
        if answer.settlement_existed:
            show.console.print(show.settlement(answer.settlement))
        else:
            show.console.print("no such settlement: nothing to reverse, and none will be made")

    run(go)


@settlement.command()
def get(settlement_id: Annotated[str, typer.Argument(help="S… id")]) -> None:
    """One settlement and its legs."""
    asked = spb.GetSettlementRequest(settlement_id=settlement_id)

    async def go(c: Client) -> None:
        show.console.print(show.settlement(await c.settlement.GetSettlement(asked)))

    run(go)


@settlement.command("list")
def list_(
    patient: Annotated[str, typer.Option(help="settlements of this patient")] = "",
    payer: Annotated[str, typer.Option(help="settlements this person's account paid")] = "",
    limit: Annotated[int, typer.Option(help="how many")] = 50,
) -> None:
    """Consumption records: by patient, or by payer (his own and his relatives' bills)."""
    asked = spb.ListSettlementsRequest(patient_id=patient, payer_id=payer, page_size=limit)

    async def go(c: Client) -> None:
        found = await c.settlement.ListSettlements(asked)
        show.console.print(show.settlements("consumption records", found.settlements))

    run(go)


def premium(
    payer: Annotated[str, typer.Argument(help="the employee whose account pays")],
    beneficiary: Annotated[str, typer.Argument(help="the resident it pays for")],
    amount: Annotated[str, typer.Option(help="yuan")],
    year: Annotated[int, typer.Option(help="the premium year")] = dt.date.today().year,
    request: Annotated[str, typer.Option(help="request id (a retry repeats it)")] = "",
    ltc: Annotated[bool, typer.Option("--ltc", help="long-term-care insurance (长护险)")] = False,
) -> None:
    """Pay a relative's resident-insurance premium (or, with --ltc, his long-term-care premium)
    from an employee's account: from the payer's aid quota for him when it covers it (N5)."""
    kind = spb.PREMIUM_KIND_LONG_TERM_CARE if ltc else spb.PREMIUM_KIND_RESIDENT_MEDICAL
    asked = spb.PayResidentPremiumRequest(payer_id=payer, beneficiary_id=beneficiary, year=year,
                                          amount_fen=fen(amount), kind=kind,
                                          request_id=request or request_id())  # fmt: skip

    async def go(c: Client) -> None:
        show.console.print(show.premium(await c.settlement.PayResidentPremium(asked)))

    run(go)


premiums = typer.Typer(no_args_is_help=True, help="Automatic month-end premium deduction (A2).")


@premiums.command("autopay")
def autopay(
    beneficiary: Annotated[str, typer.Argument(help="the resident whose premium is paid")],
    payer: Annotated[str, typer.Argument(help="a binder bound to him, or himself")],
    off: Annotated[bool, typer.Option("--off", help="keep the record, pay nothing")] = False,
) -> None:
    """Set who pays a resident's premium at month end (setting again replaces)."""
    asked = spb.SetPremiumAutoPayRequest(beneficiary_id=beneficiary, payer_id=payer,
                                         enabled=not off, request_id=request_id())  # fmt: skip

    async def go(c: Client) -> None:
        _said(await c.settlement.SetPremiumAutoPay(asked))

    run(go)


@premiums.command("show")
def show_autopay(
    beneficiary: Annotated[str, typer.Argument(help="the resident whose premium is paid")],
) -> None:
    """Who pays a resident's premium at month end, and whether it is on."""
    asked = spb.GetPremiumAutoPayRequest(beneficiary_id=beneficiary)

    async def go(c: Client) -> None:
        _said(await c.settlement.GetPremiumAutoPay(asked))

    run(go)


def _said(got: spb.PremiumAutoPay) -> None:
    show.console.print(f"auto-pay {'on' if got.enabled else 'off'}: {mask(got.payer_id)} "
                       f"pays for {mask(got.beneficiary_id)}")  # fmt: skip


@premiums.command("run")
def run_deductions(
    year: Annotated[int, typer.Option(help="the premium year (this year or next)")],
    run_id: Annotated[str, typer.Option(help="repeat a run's id to get its result again")] = "",
) -> None:
    """The month-end job: pay every enabled auto-pay's premium still due for the year. Safe to
    run again, also after it was killed: nobody pays twice."""
    asked = spb.RunPremiumDeductionsRequest(year=year, run_id=run_id or request_id())

    async def go(c: Client) -> None:
        done = await c.settlement.RunPremiumDeductions(asked, timeout_s=3600)
        show.console.print(show.deductions(done))

    run(go)
