"""The Python way in for callers of gongji: one `Client`, one stub per service, a deadline on
every call, refusals as `GongjiError`, and retries only where they are safe.

    async with Client.connect(token) as gongji:
        account = await gongji.account.GetAccount(account_pb2.GetAccountRequest(person_id=pid))

Retries. The channel's service config retries UNAVAILABLE (the server never saw the call, or
answered that a part of the stack was down); every mutating RPC carries a request id or a
natural key, so a repeat is answered from the first. On top, a call refused with a reason that
says "the same again may get through" (LOCK_TIMEOUT, SETTLEMENT_IN_PROGRESS, ...) is repeated
with exponential back-off and jitter until the call's deadline. Nothing else is retried.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from types import TracebackType
from typing import Any

import grpc

from gongji.account.v1 import account_pb2_grpc
from gongji.binding.v1 import binding_pb2_grpc
from gongji.settlement.v1 import settlement_pb2, settlement_pb2_grpc
from services.client.errors import GongjiError
from services.common import channels
from services.common.backoff import Backoff
from services.common.config import DEFAULT_ADDRS
from services.settlement.cursor import START_HEADER

DEFAULT_TIMEOUT_S = 5.0
_FIRST_BACKOFF_S, _MAX_BACKOFF_S = 0.05, 1.0

Call = Callable[..., Awaitable[Any]]


class Service:
    """One service's unary RPCs, by their proto names: `await service.Settle(request)`. The
    streaming one, WatchPayments, is `Client.watch_payments`, which also resumes it."""

    def __init__(self, stub: Any, timeout_s: float) -> None:
        self._stub, self._timeout_s = stub, timeout_s

    def __getattr__(self, method: str) -> Call:
        if method == "WatchPayments":
            raise AttributeError("a stream: use Client.watch_payments")
        rpc = getattr(self._stub, method)  # AttributeError for a name the service lacks

        async def call(request: Any, timeout_s: float | None = None) -> Any:
            deadline = time.monotonic() + (timeout_s or self._timeout_s)
            backoff = Backoff(_FIRST_BACKOFF_S, _MAX_BACKOFF_S)
            while True:
                try:
                    return await rpc(request, timeout=max(0.001, deadline - time.monotonic()))
                except grpc.aio.AioRpcError as e:
                    error = GongjiError.of(e)
                pause = backoff.pause()
                if not error.retryable or time.monotonic() + pause >= deadline:
                    raise error
                await asyncio.sleep(pause)

        call.__name__ = method
        return call


class Client:
    def __init__(
        self, channels_by_service: Mapping[str, grpc.aio.Channel],
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:  # fmt: skip
        self._channels = dict(channels_by_service)
        self.account = Service(
            account_pb2_grpc.AccountServiceStub(self._channels["account"]), timeout_s
        )
        self.binding = Service(
            binding_pb2_grpc.BindingServiceStub(self._channels["binding"]), timeout_s
        )
        self._settlement = settlement_pb2_grpc.SettlementServiceStub(self._channels["settlement"])
        self.settlement = Service(self._settlement, timeout_s)

    @classmethod
    def connect(
        cls,
        token: str | None,
        addresses: Mapping[str, str] | None = None,
        credentials: grpc.ChannelCredentials | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> Client:
        """`token`: the bearer token (None only for a stack run with GONGJI_AUTH=off);
        `addresses`: by service name, else the default ports; `credentials`: TLS."""
        where = {**DEFAULT_ADDRS, **(addresses or {})}
        header = f"Bearer {token}" if token else None
        made = {
            name: channels.channel(where[name], (lambda: header) if header else None, credentials)
            for name in DEFAULT_ADDRS
        }
        return cls(made, timeout_s)

    async def watch_payments(
        self, person_id: str, cursor: str = ""
    ) -> AsyncIterator[settlement_pb2.PaymentEvent]:
        """The person's payment events (rule A10) from `cursor` on ("" = from now), for as long
        as the caller reads. When the stream ends for a reason that says "again" (a server
        draining, a part of the stack down) or the connection is lost, it is opened again after
        the last event (or at its start), with back-off: nothing lost, nothing twice. A refusal
        ends it."""
        backoff = Backoff(_FIRST_BACKOFF_S, _MAX_BACKOFF_S)
        while True:
            request = settlement_pb2.WatchPaymentsRequest(person_id=person_id, cursor=cursor)
            call = self._settlement.WatchPayments(request)  # no deadline: it lasts while read
            try:
                cursor = dict(await call.initial_metadata()).get(START_HEADER, cursor)
                async for event in call:
                    cursor = event.cursor
                    backoff.reset()
                    yield event
            except grpc.aio.AioRpcError as e:
                error = GongjiError.of(e)
                if not (error.retryable or error.code == grpc.StatusCode.UNAVAILABLE):
                    raise error from None
            finally:
                call.cancel()
            await asyncio.sleep(backoff.pause())

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
