from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from gongji.account.v1 import account_pb2_grpc
from gongji.binding.v1 import binding_pb2_grpc
from gongji.settlement.v1 import settlement_pb2_grpc
from services.account.server import build
from services.binding.server import build as build_binding
from services.settlement.server import build as build_settlement
from tests.support import POLICY_FILE, serving, settings


@pytest.fixture(scope="session")
async def account_server(redis_url: str, redis: object) -> AsyncIterator[tuple[Any, int]]:
    """The account service on a real gRPC server (port 0) over the test Redis."""
    app = await build(settings(redis_url, lock_lease_ms=2000, policy_file=POLICY_FILE))
    async with serving(app) as (channel, port):
        yield account_pb2_grpc.AccountServiceStub(channel), port


@pytest.fixture(scope="session")
def account(account_server: tuple[Any, int]) -> account_pb2_grpc.AccountServiceStub:
    return account_server[0]


@pytest.fixture(scope="session")
def account_addr(account_server: tuple[Any, int]) -> str:
    return f"127.0.0.1:{account_server[1]}"


@pytest.fixture(scope="session")
async def binding_service(redis_url: str, account_addr: str) -> AsyncIterator[tuple[Any, str]]:
    """The binding service on port 0, reaching the account service over gRPC."""
    app = await build_binding(
        settings(redis_url, "binding", account_addr=account_addr, policy_file=POLICY_FILE)
    )
    async with serving(app) as (channel, port):
        yield binding_pb2_grpc.BindingServiceStub(channel), f"127.0.0.1:{port}"


@pytest.fixture(scope="session")
def binding(binding_service: tuple[Any, str]) -> binding_pb2_grpc.BindingServiceStub:
    return binding_service[0]


@pytest.fixture(scope="session")
def binding_server(binding_service: tuple[Any, str]) -> str:
    return binding_service[1]


@pytest.fixture(scope="session")
async def settlement_service(
    redis_url: str, account_addr: str, binding_server: str
) -> AsyncIterator[tuple[Any, str]]:
    """The settlement service on port 0 over the account and binding services."""
    app = await build_settlement(
        settings(redis_url, "settlement", account_addr=account_addr, binding_addr=binding_server)
    )
    async with serving(app) as (channel, port):
        yield settlement_pb2_grpc.SettlementServiceStub(channel), f"127.0.0.1:{port}"


@pytest.fixture(scope="session")
def settlement(
    settlement_service: tuple[Any, str],
) -> settlement_pb2_grpc.SettlementServiceStub:
    return settlement_service[0]


@pytest.fixture(scope="session")
def addresses(
    account_addr: str, binding_server: str, settlement_service: tuple[Any, str]
) -> dict[str, str]:
    """Where each in-process service listens, for channels of other callers."""
    return {"account": account_addr, "binding": binding_server, "settlement": settlement_service[1]}


@pytest.fixture(scope="module")
async def raw(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    """The test Redis as bytes (a footprint compares what is kept, byte for byte)."""
    client = aioredis.Redis.from_url(redis_url)
    yield client
    await client.aclose()
