"""Test helpers: fresh valid person ids, settings, servers, tokens and channels, calls as any
caller, and reading error reasons.

Every test process has one token secret (GONGJI_AUTH_SECRET_FILE, made here in a temporary
folder unless set); the service processes the tests start inherit it, and serve no /metrics
(GONGJI_METRICS_ADDR=off) unless a test gives them a port: many run side by side. `channel`
calls as a service unless told another role."""

from __future__ import annotations

import asyncio
import datetime as dt
import inspect
import itertools
import os
import pathlib
import random
import re
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import grpc
import pytest
from google.protobuf.message import Message

from gongji.account.v1 import account_pb2_grpc
from gongji.binding.v1 import binding_pb2_grpc
from gongji.settlement.v1 import settlement_pb2_grpc
from services.common import channels
from services.common.auth import Tokens, ensure_secret, read_secret
from services.common.config import Settings
from services.common.ids import make_person_id
from services.common.rpc import reason_of
from services.common.server import App, create_server

_sequence = itertools.count(random.randrange(1000))

SECRET_FILE = os.environ.setdefault(
    "GONGJI_AUTH_SECRET_FILE",
    str(pathlib.Path(tempfile.mkdtemp(prefix="gongji-tests-")) / "auth-secret"),
)
ensure_secret(SECRET_FILE)
os.environ.setdefault("GONGJI_METRICS_ADDR", "off")
TOKENS = Tokens(read_secret(SECRET_FILE))
POLICY_FILE = str(pathlib.Path(__file__).with_name("policy.toml"))  # B5 lifted in Guizhou (52)


def bearer(role: str = "service", sub: str = "tests", ttl_s: float = 3600) -> str:
    return f"Bearer {TOKENS.mint(role, sub, ttl_s)}"


def channel(
    address: str, role: str = "service", sub: str = "tests",
    credentials: grpc.ChannelCredentials | None = None,
) -> grpc.aio.Channel:  # fmt: skip
    """A channel whose calls carry a token of `role` for `sub`; no transparent retries, so a
    test sees each status as it is answered."""
    header = bearer(role, sub)
    return channels.channel(address, lambda: header, credentials, options=[])


STUBS = {
    "account": account_pb2_grpc.AccountServiceStub,
    "binding": binding_pb2_grpc.BindingServiceStub,
    "settlement": settlement_pb2_grpc.SettlementServiceStub,
}


async def as_(
    addresses: dict[str, str], service: str, role: str, sub: str, rpc: str, request: Any
) -> Any:
    """One unary call to `service` (its address in `addresses`) with a token of `role` for
    `sub`: as a citizen's app, an institution's system or the counter would make it."""
    async with channel(addresses[service], role, sub) as ch:
        return await getattr(STUBS[service](ch), rpc)(request, timeout=10)


def new_pid(region: str = "430102", born: dt.date | None = None) -> str:
    """A valid resident id nobody else in this test run has (the database starts empty).
    `born`: a day in the first days of a month; every 1,000 ids move it a day later."""
    n = next(_sequence)
    if born is None:
        born = dt.date(1950, 1, 1) + dt.timedelta(days=n // 1000)
    else:
        born += dt.timedelta(days=(n // 1000) % 25)
    return make_person_id(region, born, n % 1000)


def settings(redis_url: str, service: str = "account", **overrides: object) -> Settings:
    base = Settings(
        service=service,
        listen_addr="127.0.0.1:0",
        account_addr="127.0.0.1:50051",
        binding_addr="127.0.0.1:50052",
        settlement_addr="127.0.0.1:50053",
        redis_url=redis_url,
        env="test",
        drain_grace_s=0.5,
        auth_secret_file=SECRET_FILE,
    )
    return base.__class__(**{**base.__dict__, **overrides})


@asynccontextmanager
async def serving(app: App) -> AsyncIterator[tuple[grpc.aio.Channel, int]]:
    """A real gRPC server for `app` on a free port; a channel to it, and the port."""
    running = await create_server("127.0.0.1:0", app)
    opened = channel(f"127.0.0.1:{running.port}")
    try:
        yield opened, running.port
    finally:
        await asyncio.wait_for(opened.close(), 10)
        await asyncio.wait_for(running.stop(0.2), 10)
        if app.close:
            await asyncio.wait_for(app.close(), 10)


async def refused(call: Awaitable[object]) -> tuple[grpc.StatusCode, str]:
    """Await a call that must fail; its status code and ErrorInfo reason."""
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    return info.value.code(), reason_of(info.value)


Call = Callable[..., Awaitable[object]]


_GLOB = re.compile(r"([*?\[\]\\])")
_ID = re.compile(r"[\x21-\x7e]{8,64}")


# What background loops write on their own time, never a call: the binding service's marks of
# the account events it has applied (`bind:seen:<person>:<n>`) and the account outboxes the
# event relay empties. A snapshot taken while they run must not count them as the call's.
_BACKGROUND = (b"bind:seen:", b":outbox")
# An account's lock and its fencing token: taking and giving back a lock (an account's own
# deduction refused under it) moves the fence, which is bookkeeping, not data.
_LOCK_FIELDS = (b"lock", b"fence")


async def footprint(raw: Any, request: Message, *more: str) -> dict[bytes, object]:
    """Every key whose name holds one of the ids the request names (its people, its request
    id, its records' ids) or `more`, with its serialized value (an account's hash without its
    lock fields): what a call with this request could have written. Keys that background loops
    write are left out."""
    found: dict[bytes, object] = {}
    for value in _ids(request) | set(more):
        pattern = "*" + _GLOB.sub(r"[\1]", value) + "*"
        async for key in raw.scan_iter(match=pattern, count=10_000):
            if key.startswith(b"lock:") or any(b in key for b in _BACKGROUND):
                continue
            if key.startswith(b"acct:{") and key.endswith(b"}"):
                fields = await raw.hgetall(key)
                found[key] = {f: v for f, v in fields.items() if f not in _LOCK_FIELDS}
            else:
                found[key] = await raw.dump(key)
    return found


def _ids(message: Message) -> set[str]:
    out: set[str] = set()
    for field, value in message.ListFields():
        for v in value if field.is_repeated else [value]:
            if isinstance(v, Message):
                out |= _ids(v)
            elif isinstance(v, str) and _ID.fullmatch(v):
                out.add(v)
    return out


async def eventually(
    check: Callable[[], bool | Awaitable[bool]], seconds: float = 10.0,
    what: str = "condition not reached in time",
) -> None:  # fmt: skip
    """Until `check()` (or what it returns, awaited) is true, asked every 50 ms; `what` fails
    the test after `seconds`."""
    for _ in range(int(seconds / 0.05)):
        answer = check()
        if await answer if inspect.isawaitable(answer) else answer:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(what)
