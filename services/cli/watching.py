"""`gongji watch`: a person's payment events as they happen (rule A10), one line each with its
cursor, until Ctrl-C. The client opens the stream again after the last event when a server
drains or the connection drops; the last cursor printed resumes a later `gongji watch`."""

from __future__ import annotations

from typing import Annotated

import typer

from services.cli import show
from services.cli.session import run
from services.client import Client
from services.common.ids import mask


def watch(
    person: Annotated[str, typer.Argument(help="the resident ID number whose account to watch")],
    cursor: Annotated[
        str, typer.Option(help="resume right after the event this cursor was printed with")
    ] = "",
) -> None:
    """Follow every payment of a person's account as it happens: his own bills, his relatives'
    (family aid), their refunds and premiums; one line each. Ctrl-C stops."""
    last = cursor

    async def go(c: Client) -> None:
        nonlocal last
        show.console.print(f"watching {mask(person)} (Ctrl-C stops)", soft_wrap=True)
        async for event in c.watch_payments(person, cursor):
            show.console.print(show.payment_event(event), soft_wrap=True)
            last = event.cursor

    try:
        run(go)
    except KeyboardInterrupt:
        show.console.print(f"stopped; resume with --cursor {last}" if last else "stopped")
