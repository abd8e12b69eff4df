"""One CLI command's conversation with the stack: a client with an operator's token minted from
the stack's secret (or a citizen's, for commands he may make himself), and refusals printed as
their reason and what to do, never a traceback."""

from __future__ import annotations

import asyncio
import getpass
import os
import re
import uuid
from collections.abc import Awaitable, Callable
from typing import NoReturn

import typer
from rich.markup import escape

from services.cli.show import console
from services.client import Client, GongjiError
from services.common.config import ConfigError
from services.common.logs import clean
from services.stack.connect import Connection

_YUAN = re.compile(r"([0-9]{1,10})(?:\.([0-9]{1,2}))?")


def fen(text: str) -> int:
    """'12.30' yuan → 1230 fen, exactly (money never passes through a float)."""
    found = _YUAN.fullmatch(text.strip().lstrip("¥"))
    if not found:
        raise typer.BadParameter(f"{text!r} is not an amount in yuan such as 12.30")
    return int(found[1]) * 100 + int((found[2] or "0").ljust(2, "0"))


def request_id() -> str:
    return f"cli-{uuid.uuid4().hex}"


def staff() -> str:
    """Whom the operator token names: GONGJI_STAFF_ID, else the login name."""
    return os.environ.get("GONGJI_STAFF_ID") or getpass.getuser() or "cli"


def connect(role: str = "operator", sub: str = "") -> Client:
    try:
        connection = Connection.from_env(os.environ, role, sub or staff())
    except (ConfigError, ValueError) as e:
        fail(f"{e}", "start the stack first (make run), or set GONGJI_AUTH_SECRET_FILE")
    return connection.client(os.environ)


def run(action: Callable[[Client], Awaitable[None]], citizen: str = "") -> None:
    """Run `action` with a client of the stack, as counter staff, or as `citizen` himself (his
    own token, as his app would call); a refusal ends the command with exit code 1."""

    async def go() -> None:
        client = connect("citizen", citizen) if citizen else connect()
        try:
            await action(client)
        finally:
            await client.close()

    try:
        asyncio.run(go())
    except GongjiError as e:
        fail(f"refused: {e.reason or e.code.name} — {e.message}", e.advice)


def fail(what: str, advice: str = "") -> NoReturn:
    """End the command with what went wrong, which may repeat what was sent: cleaned like a
    log line (person ids masked, cut to a bound), and shown as text, not as markup."""
    console.print(f"[red]{escape(clean(what))}[/red]")
    if advice:
        console.print(f"  what to do: {advice}")
    raise typer.Exit(1)
