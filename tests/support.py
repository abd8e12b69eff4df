"""Test helpers: fresh valid person ids, settings, servers, and reading error reasons."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import grpc
import pytest

from services.common.config import Settings
from services.common.ids import make_person_id
from services.common.rpc import reason_of
from services.common.server import App, create_server

_sequence = itertools.count(random.randrange(1000))


def new_pid(region: str = "430102", born: dt.date | None = None) -> str:
    """A valid resident id nobody else in this test run has (the database starts empty)."""
    n = next(_sequence)
    if born is None:
        born = dt.date(1950, 1, 1) + dt.timedelta(days=n // 1000)
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
    )
    return base.__class__(**{**base.__dict__, **overrides})


@asynccontextmanager
async def serving(app: App) -> AsyncIterator[tuple[grpc.aio.Channel, int]]:
    """A real gRPC server for `app` on a free port; a channel to it, and the port."""
    running = await create_server("127.0.0.1:0", app)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{running.port}")
    try:
        yield channel, running.port
    finally:
        await asyncio.wait_for(channel.close(), 10)
        await asyncio.wait_for(running.stop(0.2), 10)
        if app.close:
            await asyncio.wait_for(app.close(), 10)


async def refused(call: Awaitable[object]) -> tuple[grpc.StatusCode, str]:
    """Await a call that must fail; its status code and ErrorInfo reason."""
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    return info.value.code(), reason_of(info.value)


Call = Callable[..., Awaitable[object]]
