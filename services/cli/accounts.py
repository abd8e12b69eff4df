"""`gongji account`: what counter staff do for a person's account (operator token)."""

from __future__ import annotations

from typing import Annotated

import typer

from gongji.account.v1 import account_pb2 as apb
from gongji.common.v1 import common_pb2
from services.cli import show
from services.cli.session import fen, request_id, run
from services.client import Client
from services.common.ids import mask

account = typer.Typer(
    no_args_is_help=True, help="Open, read, credit, suspend, stop accounts; change insurance type."
)

Person = Annotated[str, typer.Argument(help="18-character resident ID number")]
KINDS = {"allocation": apb.CREDIT_KIND_MONTHLY_ALLOCATION, "adjustment": apb.CREDIT_KIND_ADJUSTMENT}
STOP_REASONS = {
    "death": apb.STOP_REASON_DEATH,
    "emigration": apb.STOP_REASON_EMIGRATION,
    "abandon": apb.STOP_REASON_ABANDON_EMPLOYEE_INSURANCE,
}
INSURANCE_TYPES = {
    "employee": common_pb2.INSURANCE_TYPE_EMPLOYEE,
    "resident": common_pb2.INSURANCE_TYPE_RESIDENT,
}


@account.command("open")
def open_(
    person: Person,
    name: Annotated[str, typer.Option(help="the name on the ID card")],
    region: Annotated[str, typer.Option(help="6-digit region code of the insuring city")],
    resident: Annotated[
        bool, typer.Option(help="resident insurance (no personal account)")
    ] = False,
) -> None:
    """Open a person's account."""
    kind = common_pb2.INSURANCE_TYPE_RESIDENT if resident else common_pb2.INSURANCE_TYPE_EMPLOYEE
    request = apb.OpenAccountRequest(
        person_id=person, name=name, insurance_type=kind, region_code=region,
        request_id=request_id(),
    )  # fmt: skip

    async def go(c: Client) -> None:
        show.console.print(show.accounts("opened", [await c.account.OpenAccount(request)]))

    run(go)


@account.command("get")
def get(persons: Annotated[list[str], typer.Argument(help="resident ID numbers")]) -> None:
    """Balances of one or more accounts."""

    async def go(c: Client) -> None:
        if len(persons) == 1:  # an unknown person is refused with ACCOUNT_NOT_FOUND
            found = [await c.account.GetAccount(apb.GetAccountRequest(person_id=persons[0]))]
        else:
            asked = apb.BatchGetAccountsRequest(person_ids=persons)
            found = list((await c.account.BatchGetAccounts(asked)).accounts)
        show.console.print(show.accounts("accounts", found))
        missing = set(persons) - {a.person_id for a in found}
        if missing:
            show.console.print(f"no account: {', '.join(sorted(mask(p) for p in missing))}")

    run(go)


@account.command()
def credit(
    person: Person,
    amount: Annotated[str, typer.Argument(help="yuan, e.g. 300 or 12.50")],
    kind: Annotated[str, typer.Option(help="allocation or adjustment")] = "allocation",
    memo: Annotated[str, typer.Option(help="e.g. the month it is for")] = "",
    request: Annotated[str, typer.Option(help="request id (a retry repeats it)")] = "",
) -> None:
    """Credit an account (monthly allocation or adjustment)."""
    if kind not in KINDS:
        raise typer.BadParameter("kind must be allocation or adjustment")
    asked = apb.CreditRequest(person_id=person, amount_fen=fen(amount), kind=KINDS[kind],
                              memo=memo, request_id=request or request_id())  # fmt: skip

    async def go(c: Client) -> None:
        show.console.print(show.entries("credited", [await c.account.Credit(asked)]))

    run(go)


@account.command()
def ledger(
    person: Person, limit: Annotated[int, typer.Option(help="entries to show")] = 50
) -> None:
    """An account's ledger, newest first."""

    async def go(c: Client) -> None:
        got = await c.account.ListEntries(apb.ListEntriesRequest(person_id=person, page_size=limit))
        show.console.print(show.entries("ledger", got.entries))

    run(go)


@account.command()
def contribute(
    person: Person,
    month: Annotated[str, typer.Argument(help="YYYY-MM")],
    base: Annotated[str, typer.Option(help="the contribution base, yuan")],
    employee: Annotated[str, typer.Option(help="the employee's share, yuan")],
    employer: Annotated[str, typer.Option(help="the employer's share, yuan")] = "0",
    flexible: Annotated[bool, typer.Option(help="paid as a flexibly employed person")] = False,
    region: Annotated[str, typer.Option(help="where it was paid; default the account's")] = "",
) -> None:
    """Record a contribution month; its allocation is credited once (A8)."""
    payer = apb.CONTRIBUTION_PAYER_FLEXIBLE_EMPLOYMENT if flexible else (
        apb.CONTRIBUTION_PAYER_EMPLOYER
    )  # fmt: skip
    asked = apb.RecordContributionRequest(
        person_id=person, month=month, base_fen=fen(base), employee_fen=fen(employee),
        employer_fen=fen(employer), payer=payer, region_code=region, request_id=request_id(),
    )  # fmt: skip

    async def go(c: Client) -> None:
        show.console.print(show.contribution(await c.account.RecordContribution(asked)))

    run(go)


@account.command()
def contributions(person: Person) -> None:
    """Months contributed, in this city, full years and gaps (A8)."""
    asked = apb.GetContributionRecordRequest(person_id=person)

    async def go(c: Client) -> None:
        show.console.print(show.contribution_record(await c.account.GetContributionRecord(asked)))

    run(go)


@account.command()
def suspend(person: Person, reason: Annotated[str, typer.Option(help="why")]) -> None:
    """Suspend an account: it pays nothing until resumed."""
    asked = apb.SuspendAccountRequest(person_id=person, reason=reason, request_id=request_id())

    async def go(c: Client) -> None:
        show.console.print(show.accounts("suspended", [await c.account.SuspendAccount(asked)]))

    run(go)


@account.command()
def resume(person: Person) -> None:
    """Resume a suspended account."""
    asked = apb.ResumeAccountRequest(person_id=person, request_id=request_id())

    async def go(c: Client) -> None:
        show.console.print(show.accounts("resumed", [await c.account.ResumeAccount(asked)]))

    run(go)


@account.command()
def stop(
    person: Person,
    reason: Annotated[str, typer.Option(help="death, emigration or abandon (giving up)")],
) -> None:
    """Stop the insurance (停保, A9): the account pays nothing more; withdrawal needs it (A4)."""
    if reason not in STOP_REASONS:
        raise typer.BadParameter(f"one of {', '.join(STOP_REASONS)}", param_hint="--reason")
    asked = apb.StopInsuranceRequest(
        person_id=person, reason=STOP_REASONS[reason], request_id=request_id()
    )

    async def go(c: Client) -> None:
        show.console.print(show.accounts("stopped", [await c.account.StopInsurance(asked)]))

    run(go)


@account.command("change-type")
def change_type(
    person: Person,
    insurance_type: Annotated[str, typer.Argument(help="employee or resident")],
) -> None:
    """Change the insurance type (A9); the account, balance and history are kept."""
    if insurance_type not in INSURANCE_TYPES:
        raise typer.BadParameter("employee or resident", param_hint="INSURANCE_TYPE")
    asked = apb.ChangeInsuranceTypeRequest(
        person_id=person, insurance_type=INSURANCE_TYPES[insurance_type], request_id=request_id()
    )

    async def go(c: Client) -> None:
        show.console.print(show.accounts("changed", [await c.account.ChangeInsuranceType(asked)]))

    run(go)
