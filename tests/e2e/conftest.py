from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from gongji.account.v1 import account_pb2_grpc
from gongji.binding.v1 import binding_pb2_grpc
from gongji.settlement.v1 import settlement_pb2_grpc
from services.common.config import DEFAULT_ADDRS, Tls
from services.common.security import channel_credentials
from tests import support
from tests.e2e.stack import Process, addresses, env_for, wait_serving


@pytest.fixture(scope="session")
async def processes(redis_url: str, redis: object) -> AsyncIterator[dict[str, str]]:
    """The three services as their own processes, the way users run them; or, with
    GONGJI_E2E_STACK=external, a stack already running at GONGJI_ACCOUNT_ADDR, ... (what
    `make compose-test` points the suite at), called with the environment's TLS and secret;
    the session's own Redis is then left unused."""
    if os.environ.get("GONGJI_E2E_STACK") == "external":
        yield {n: os.environ.get(f"GONGJI_{n.upper()}_ADDR", a) for n, a in DEFAULT_ADDRS.items()}
        return
    addrs = addresses()
    running = []
    try:
        for name in ("account", "binding", "settlement"):
            running.append(Process(name, env_for(name, redis_url, addrs)).start())
            await wait_serving(addrs[name], f"gongji.{name}.v1.{name.title()}Service")
        yield addrs
    finally:
        for p in running:
            p.stop()


@pytest.fixture(scope="session")
async def channels(processes: dict[str, str]) -> AsyncIterator[dict[str, grpc.aio.Channel]]:
    credentials = channel_credentials(Tls.from_env(os.environ))
    opened = {name: support.channel(addr, credentials=credentials)
              for name, addr in processes.items()}  # fmt: skip
    yield opened
    for channel in opened.values():
        await channel.close()


@pytest.fixture(scope="session")
def account(channels: dict[str, Any]) -> account_pb2_grpc.AccountServiceStub:
    return account_pb2_grpc.AccountServiceStub(channels["account"])


@pytest.fixture(scope="session")
def binding(channels: dict[str, Any]) -> binding_pb2_grpc.BindingServiceStub:
    return binding_pb2_grpc.BindingServiceStub(channels["binding"])


@pytest.fixture(scope="session")
def settlement(channels: dict[str, Any]) -> settlement_pb2_grpc.SettlementServiceStub:
    return settlement_pb2_grpc.SettlementServiceStub(channels["settlement"])
