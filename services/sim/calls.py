"""Calls in process: each service's real handlers behind its real interceptor (the access table,
the error mapping: services.common.rpc.ErrorMapper), reached without a network, by the
simulator's callers and by the services' own peer calls.

A peer call is a gate of the scheduler, and its handler runs in a task of its own as a gRPC
server would run it (its own caller, its own deadline): the caller's cancel cancels it, its
death answers the caller UNAVAILABLE, and the request and the answer are copied through their
wire form on the way, as the network copies them.
"""

from __future__ import annotations

import asyncio
import types
from collections.abc import Sequence
from typing import Any

import grpc
from google.protobuf.message import Message

from services.common.access import Gate
from services.common.auth import Caller, Guard
from services.common.rpc import Behavior, Door, ErrorMapper
from services.common.server import App
from services.sim.clock import SimClock
from services.sim.scheduler import HANDLER, Handler, Scheduler
from services.sim.status import status_error

_CALLER_KEY = "sim-caller"


class SimGuard(Guard):
    """The caller each call names in its metadata (the simulator mints no tokens)."""

    def __init__(self) -> None:
        super().__init__(None)

    def caller(self, metadata: Any) -> Caller:
        for key, value in metadata or ():
            if key == _CALLER_KEY:
                role, sub = str(value).split(" ", 1)
                return Caller(role, sub)
        return Caller("service", "sim")


class SimContext:
    """What a handler asks of its gRPC context: its caller, its deadline, its refusal."""

    def __init__(self, caller: Caller, clock: SimClock, timeout_s: float | None) -> None:
        self.caller, self.clock = caller, clock
        self.deadline_ms = None if timeout_s is None else clock.ms + int(timeout_s * 1000)

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return ((_CALLER_KEY, f"{self.caller.role} {self.caller.sub}"),)

    def time_remaining(self) -> float | None:
        if self.deadline_ms is None:
            return None
        return max(0.0, (self.deadline_ms - self.clock.ms) / 1000)

    async def abort(
        self, code: grpc.StatusCode, details: str = "", trailing_metadata: Sequence[Any] = ()
    ) -> None:
        raise status_error(code, details, trailing_metadata)

    async def send_initial_metadata(self, metadata: Any) -> None:
        return None


class _Handlers:
    """Where a servicer's `add_..._to_server` registers its handlers."""

    def __init__(self) -> None:
        self.found: dict[str, grpc.RpcMethodHandler] = {}

    def add_generic_rpc_handlers(self, handlers: Any) -> None:
        return None

    def add_registered_method_handlers(self, service: str, handlers: dict[str, Any]) -> None:
        self.found |= {f"/{service}/{name}": h for name, h in handlers.items()}


class SimServer:
    """One service: its handlers behind its interceptor, called in process."""

    def __init__(self, name: str, app: App) -> None:
        self.name, self.app = name, app
        self.handlers = _Handlers()
        for service in app.services:
            service.add(service.servicer, self.handlers)
        self.mapper = ErrorMapper(Door(SimGuard(), Gate(app.resolvers)))
        self._wrapped: dict[str, Behavior] = {}

    async def invoke(self, method: str, request: Message, context: SimContext) -> Any:
        behavior = self._wrapped.get(method)
        if behavior is None:
            inner = self.handlers.found[method]

            async def found(details: Any) -> grpc.RpcMethodHandler:
                return inner

            details = types.SimpleNamespace(method=method, invocation_metadata=())
            wrapped = await self.mapper.intercept_service(found, details)
            behavior = self._wrapped[method] = wrapped.unary_unary
        return await behavior(request, context)


class LocalChannel:
    """A channel to one service in this process (a peer's AccountClient uses it)."""

    def __init__(self, sched: Scheduler, clock: SimClock, caller: str) -> None:
        self.sched, self.clock, self.caller = sched, clock, Caller("service", caller)
        self.server: SimServer | None = None  # set once the target is built

    def unary_unary(self, method: str, *_: Any, **__: Any) -> _Call:
        return _Call(self, method)

    def unary_stream(self, method: str, *_: Any, **__: Any) -> _Call:
        return _Call(self, method)

    async def close(self) -> None:
        return None

    async def call(self, method: str, request: Message, timeout_s: float | None) -> Any:
        await self.sched.gate("call", method.rsplit("/", 1)[-1])
        assert self.server is not None
        context = SimContext(self.caller, self.clock, timeout_s)
        caller = HANDLER.get()
        if caller is None:  # outside any runner: a probe's own call
            return await self.server.invoke(method, request, context)
        return await _served(caller, self.server, method, request, context)


class _Call:
    def __init__(self, channel: LocalChannel, method: str) -> None:
        self.channel, self.method = channel, method

    async def __call__(
        self,
        request: Message,
        timeout: float | None = None,  # noqa: ASYNC109 (the keyword of a gRPC stub's call)
        **_: Any,
    ) -> Any:
        sent = type(request).FromString(request.SerializeToString())
        answer = await self.channel.call(self.method, sent, timeout)
        return type(answer).FromString(answer.SerializeToString())


async def _served(
    caller: Handler, server: SimServer, method: str, request: Message, context: SimContext
) -> Any:
    """The call's handler in a task of its own, as part of the caller's runner."""
    loop = asyncio.get_running_loop()
    callee = Handler(caller.runner, server.name)
    callee.answer = loop.create_future()

    async def serve() -> Any:
        HANDLER.set(callee)
        return await server.invoke(method, request, context)

    callee.task = loop.create_task(serve())
    callee.task.add_done_callback(lambda t: _answer(callee, t))
    caller.calls.append(callee)
    try:
        return await callee.answer
    except asyncio.CancelledError:
        callee.task.cancel()  # the caller went away: so does the call
        raise
    finally:
        caller.calls.remove(callee)


def _answer(callee: Handler, task: asyncio.Task[Any]) -> None:
    answer = callee.answer
    if answer is None or answer.done():
        return
    if task.cancelled():
        answer.set_exception(status_error(grpc.StatusCode.DEADLINE_EXCEEDED, "cancelled"))
    elif task.exception() is not None:
        answer.set_exception(task.exception())  # type: ignore[arg-type]
    else:
        answer.set_result(task.result())
