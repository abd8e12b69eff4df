from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from gongji.account.v1 import account_pb2_grpc
from services.account.server import build
from tests.support import serving, settings


@pytest.fixture(scope="session")
async def account(
    redis_url: str, redis: object
) -> AsyncIterator[account_pb2_grpc.AccountServiceStub]:
    """The account service on a real gRPC server (port 0) over the test Redis."""
    app = await build(settings(redis_url, hold_ttl_s=600, lock_lease_ms=2000))
    async with serving(app) as channel:
        yield account_pb2_grpc.AccountServiceStub(channel)
