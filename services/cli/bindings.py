"""`gongji binding`: bind relatives, confirm, end and list bindings, and order a person's payers;
as counter staff (operator token), or as the citizen himself (--citizen), as from his app."""

from __future__ import annotations

from typing import Annotated

import typer

from gongji.binding.v1 import binding_pb2 as bpb
from gongji.common.v1 import common_pb2
from services.cli import show
from services.cli.session import request_id, run
from services.client import Client
from services.common.ids import mask

binding = typer.Typer(no_args_is_help=True, help="Bind relatives; their payers and order.")

# The binding commands run as counter staff unless a citizen makes them himself, as from his
# app: then a binding of an adult waits for the adult's confirmation (B14).
Citizen = Annotated[
    str, typer.Option("--citizen", help="as this person himself (his own token), not the counter")
]
Person = Annotated[str, typer.Argument(help="18-character resident ID number")]
RELATIONSHIPS = {
    name.removeprefix("RELATIONSHIP_").lower(): number
    for name, number in common_pb2.Relationship.items()
    if number
}


@binding.command()
def bind(
    binder: Annotated[str, typer.Argument(help="the employee whose account pays")],
    beneficiary: Annotated[str, typer.Argument(help="the relative it pays for")],
    relationship: Annotated[str, typer.Option("--as", help=", ".join(RELATIONSHIPS))],
    start: Annotated[str, typer.Option(help="YYYY-MM-DD; default today")] = "",
    end: Annotated[str, typer.Option(help="YYYY-MM-DD; default open-ended")] = "",
    citizen: Citizen = "",
) -> None:
    """Bind a relative to an employee's account (家庭共济). Made by the binder himself
    (--citizen BINDER) for an adult, it waits for the relative's `gongji binding confirm`."""
    if relationship not in RELATIONSHIPS:
        raise typer.BadParameter(f"--as must be one of {', '.join(RELATIONSHIPS)}")
    asked = bpb.CreateBindingRequest(
        binder_id=binder, beneficiary_id=beneficiary, relationship=RELATIONSHIPS[relationship],
        start_date=start, end_date=end, request_id=request_id(),
    )  # fmt: skip

    async def go(c: Client) -> None:
        made = await c.binding.CreateBinding(asked)
        show.console.print(show.bindings("bound", [made]))
        if made.status == bpb.BINDING_STATUS_PENDING_CONSENT:
            show.console.print(f"waits for {mask(beneficiary)} to confirm within 7 days: gongji "
                               f"binding confirm {made.binding_id} --citizen <the relative's "
                               "id>")  # fmt: skip

    run(go, citizen)


BindingId = Annotated[str, typer.Argument(help="the binding's id")]


@binding.command()
def unbind(binding_id: BindingId, citizen: Citizen = "") -> None:
    """End a binding; the relative declines one waiting for him this way too."""
    asked = bpb.RemoveBindingRequest(binding_id=binding_id, request_id=request_id())

    async def go(c: Client) -> None:
        show.console.print(show.bindings("removed", [await c.binding.RemoveBinding(asked)]))

    run(go, citizen)


@binding.command()
def confirm(binding_id: BindingId, citizen: Citizen = "") -> None:
    """The relative's yes to a binding made for him (B14): from now on it pays for him."""
    asked = bpb.ConfirmBindingRequest(binding_id=binding_id, request_id=request_id())

    async def go(c: Client) -> None:
        show.console.print(show.bindings("confirmed", [await c.binding.ConfirmBinding(asked)]))

    run(go, citizen)


@binding.command("list")
def list_(
    binder: Annotated[str, typer.Option(help="bindings this person pays for")] = "",
    beneficiary: Annotated[str, typer.Option(help="bindings that pay for this person")] = "",
    all_: Annotated[bool, typer.Option("--all", help="ended ones too")] = False,
    citizen: Citizen = "",
) -> None:
    """A person's bindings: ACTIVE ones and those waiting for consent (with --all, ended ones
    too)."""
    asked = bpb.ListBindingsRequest(binder_id=binder, beneficiary_id=beneficiary,
                                    include_inactive=all_)  # fmt: skip

    async def go(c: Client) -> None:
        show.console.print(
            show.bindings("bindings", (await c.binding.ListBindings(asked)).bindings)
        )

    run(go, citizen)


@binding.command()
def payers(
    beneficiary: Person, on: Annotated[str, typer.Option(help="YYYY-MM-DD")] = "",
    citizen: Citizen = "",
) -> None:  # fmt: skip
    """Who pays for a person, in order."""
    asked = bpb.GetPayersRequest(beneficiary_id=beneficiary, on_date=on)

    async def go(c: Client) -> None:
        show.console.print(show.payers("payers", (await c.binding.GetPayers(asked)).payers))

    run(go, citizen)


@binding.command()
def reorder(
    beneficiary: Person,
    binders: Annotated[list[str], typer.Argument(help="the binders, first payer first")],
    citizen: Citizen = "",
) -> None:
    """Set the order in which a person's binders pay."""
    asked = bpb.SetPayerOrderRequest(beneficiary_id=beneficiary, binder_ids=binders,
                                     request_id=request_id())  # fmt: skip

    async def go(c: Client) -> None:
        show.console.print(show.payers("payers", (await c.binding.SetPayerOrder(asked)).payers))

    run(go, citizen)
