"""The three services in this process over a Redis of their own, for tests whose assertions
cover the whole database (an audit, a job over every record)."""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from gongji.account.v1 import account_pb2_grpc
from gongji.binding.v1 import binding_pb2_grpc
from gongji.settlement.v1 import settlement_pb2_grpc
from services.account.server import build as build_account
from services.binding.server import build as build_binding
from services.common.clock import Clock
from services.common.redisdb import EmbeddedRedis, free_port
from services.settlement.server import build as build_settlement
from tests.support import serving, settings


@dataclasses.dataclass
class OwnStack:
    url: str
    account_addr: str
    account: Any
    binding: Any
    settlement: Any


@asynccontextmanager
async def own_stack(
    folder: pathlib.Path, policy_file: str = "", clock: Clock | None = None
) -> AsyncIterator[OwnStack]:
    """`clock`: the services' clock (business dates), for tests that move time."""
    server = EmbeddedRedis(folder / "redis", free_port(), fsync="no").start()
    try:
        async with AsyncExitStack() as stack:
            url = server.url
            a_channel, a_port = await stack.enter_async_context(
                serving(await build_account(settings(url, policy_file=policy_file), clock))
            )
            account_addr = f"127.0.0.1:{a_port}"
            b_channel, b_port = await stack.enter_async_context(serving(await build_binding(
                settings(url, "binding", account_addr=account_addr, policy_file=policy_file), clock
            )))  # fmt: skip
            s_channel, _ = await stack.enter_async_context(serving(await build_settlement(
                settings(url, "settlement", account_addr=account_addr,
                         binding_addr=f"127.0.0.1:{b_port}", policy_file=policy_file), clock
            )))  # fmt: skip
            yield OwnStack(
                url, account_addr, account_pb2_grpc.AccountServiceStub(a_channel),
                binding_pb2_grpc.BindingServiceStub(b_channel),
                settlement_pb2_grpc.SettlementServiceStub(s_channel),
            )  # fmt: skip
    finally:
        server.stop()
