"""The edge between gRPC and the domain: the one place where errors become statuses.

Every service method (unary, or server-streaming) runs inside `ErrorMapper`, an aio server
interceptor that
- names the caller from his token and applies the access table (services.common.access)
  before the method runs and to its answer,
- turns a DomainError into its status code with a `google.rpc.ErrorInfo` (domain "gongji"),
- turns an unreachable Redis or peer service into UNAVAILABLE / DEPENDENCY_UNAVAILABLE,
- turns anything unexpected into INTERNAL without a traceback for the caller,
- and writes one log line per call: method, code, milliseconds, request id.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import dataclasses
import hashlib
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import redis.exceptions
from google.protobuf import any_pb2
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from services.common import faults, metrics
from services.common.access import Gate, rpc_name
from services.common.auth import Caller, Guard
from services.common.errors import ERROR_DOMAIN, DomainError
from services.common.logs import clean

log = logging.getLogger("gongji.rpc")
# The data store cannot answer now, and a retry may find it back: a connection lost or timed
# out; a Redis Cluster down or moving slots while a master restarts or fails over.
REDIS_UNAVAILABLE = (
    redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
    redis.exceptions.ClusterDownError, redis.exceptions.TryAgainError,
    redis.exceptions.SlotNotCoveredError,
)  # fmt: skip

Behavior = Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]
Streaming = Callable[[Any, grpc.aio.ServicerContext], AsyncGenerator[Any, None]]

_RETRYABLE_PEER_CODES = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
# Each call runs in its own task, so each sees only its own caller.
_CALLER: contextvars.ContextVar[Caller] = contextvars.ContextVar("caller")


def caller() -> Caller:
    """Who makes the call being served, as his token names him (set before the method runs):
    for a method whose answer or effect depends on who asks (consent, balances shown)."""
    return _CALLER.get()


def to_status(error: DomainError) -> grpc.Status:
    """The status a refusal is answered with; its message cleaned like a log line (rule I3)."""
    info = error_details_pb2.ErrorInfo(reason=error.reason, domain=ERROR_DOMAIN)
    detail = any_pb2.Any()
    detail.Pack(info)
    code = grpc.StatusCode[error.code]
    status = status_pb2.Status(code=code.value[0], message=clean(str(error)), details=[detail])
    return rpc_status.to_status(status)


def error_from_rpc(e: grpc.aio.AioRpcError) -> DomainError:
    """What a peer's refusal means to us: its own reason, or DEPENDENCY_UNAVAILABLE."""
    reason = reason_of(e)
    if reason:
        return DomainError(reason, (e.details() or reason).split(": ", 1)[-1])
    if e.code() in _RETRYABLE_PEER_CODES:
        return DomainError("DEPENDENCY_UNAVAILABLE", "a peer service did not answer; retry")
    return DomainError("INTERNAL", "a peer service failed")


def reason_of(e: grpc.aio.AioRpcError) -> str:
    """The ErrorInfo reason a gongji service attached to its status, or ''."""
    status = rpc_status.from_call(e)
    if status is None:
        return ""
    for detail in status.details:
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info) and info.domain == ERROR_DOMAIN:
            return str(info.reason)
    return ""


# Time kept back from the caller's deadline so that our own answer (e.g. LOCK_TIMEOUT) reaches
# the caller before its deadline turns it into a bare DEADLINE_EXCEEDED.
_ANSWER_MARGIN_S = 0.1


def remaining(context: grpc.aio.ServicerContext, default_s: float = 2.0) -> float:
    """Seconds this call may still wait: the caller's deadline less a margin, else `default_s`."""
    left = context.time_remaining()
    return default_s if left is None else max(0.0, float(left) - _ANSWER_MARGIN_S)


@dataclasses.dataclass(frozen=True)
class Deadline:
    """When a call's work must be done: the caller's deadline less a margin for our answer, or
    `default_s` from now when the caller set none. Peer calls get what is left of it."""

    at: float  # time.monotonic()

    @classmethod
    def of(cls, context: grpc.aio.ServicerContext, default_s: float = 5.0) -> Deadline:
        return cls(time.monotonic() + remaining(context, default_s))

    @classmethod
    def within(cls, seconds: float) -> Deadline:
        return cls(time.monotonic() + seconds)

    def left(self) -> float:
        return max(0.0, self.at - time.monotonic())


@dataclasses.dataclass(frozen=True)
class Door:
    """Who may come in (`guard`) and what each caller may do (`gate`)."""

    guard: Guard
    gate: Gate


@dataclasses.dataclass(frozen=True)
class _Admitted:
    """A call let in: its RPC's name and who makes it."""

    rpc: str
    caller: Caller


@contextlib.asynccontextmanager
async def _answering(
    method: str, request: Any, context: Any, door: Door
) -> AsyncIterator[_Admitted]:
    """Around a method's work: the caller named and the access table applied before it; after
    it, one log line, and a refusal turned into its status."""
    started = time.perf_counter()
    caller: Caller | None = None
    rpc = rpc_name(method)
    try:
        caller = door.guard.caller(context.invocation_metadata())
        _CALLER.set(caller)
        await door.gate.before(rpc, caller, request, context)
        yield _Admitted(rpc, caller)
    except (asyncio.CancelledError, GeneratorExit):  # the caller went away, or his deadline came
        _log_call(method, request, caller, started, "CANCELLED", "")
        raise
    except Exception as e:
        error = _refusal(e, method)
    else:
        _log_call(method, request, caller, started, "OK", "")
        return
    _log_call(method, request, caller, started, error.code, error.reason)
    status = to_status(error)
    await context.abort(status.code, status.details, status.trailing_metadata)


async def _run(method: str, behavior: Behavior, request: Any, context: Any, door: Door) -> Any:
    async with _answering(method, request, context, door) as call:
        return door.gate.after(call.rpc, call.caller, await behavior(request, context))


async def _stream(
    method: str, behavior: Streaming, request: Any, context: Any, door: Door
) -> AsyncGenerator[Any, None]:
    """`_run` for a server-streaming method: each message through the gate, one log line when
    the stream ends (OK only if the method ended it itself)."""
    async with (
        _answering(method, request, context, door) as call,
        contextlib.aclosing(behavior(request, context)) as responses,
    ):
        async for response in responses:
            yield door.gate.after(call.rpc, call.caller, response)


def _refusal(e: Exception, method: str) -> DomainError:
    """What an exception out of a method tells its caller."""
    if isinstance(e, DomainError):
        return e
    if isinstance(e, grpc.aio.AioRpcError):
        return error_from_rpc(e)
    if isinstance(e, REDIS_UNAVAILABLE):
        log.warning("redis unavailable", exc_info=True)
        return DomainError("DEPENDENCY_UNAVAILABLE", "the data store did not answer; retry")
    log.exception("unexpected error", extra={"fields": {"method": method}})
    return DomainError("INTERNAL", "internal error")


def _log_call(
    method: str, request: Any, caller: Caller | None, started: float, code: str, reason: str
) -> None:
    seconds = time.perf_counter() - started
    metrics.RPCS.labels(method, code, reason).inc()
    metrics.RPC_SECONDS.labels(method).observe(seconds)
    fields = {
        "method": method,
        "role": caller.role if caller else "",
        "caller": caller.sub if caller else "",
        "code": code,
        "reason": reason,
        "ms": round(seconds * 1000, 2),
        "request_id": getattr(request, "request_id", ""),
    }
    log.info("rpc", extra={"fields": fields})


class ErrorMapper(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Wraps the unary and server-streaming methods of our own services (health and reflection
    pass through). A streaming method is an async generator: it yields its messages and raises
    its refusals like any other method."""

    def __init__(self, door: Door, fault: faults.Fault | None = None) -> None:
        self.door, self.fault = door, fault
        self._wrapped: dict[str, grpc.RpcMethodHandler] = {}  # a method's handler never changes

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        method: str = details.method
        known = self._wrapped.get(method)
        if known is not None:
            return known
        handler = await continuation(details)
        if handler is None or not method.startswith("/gongji."):
            return handler
        codecs = {"request_deserializer": handler.request_deserializer,
                  "response_serializer": handler.response_serializer}  # fmt: skip
        if handler.unary_unary:
            wrapped = grpc.unary_unary_rpc_method_handler(
                self._unary(method, handler.unary_unary), **codecs
            )
        elif handler.unary_stream:
            wrapped = grpc.unary_stream_rpc_method_handler(
                self._streaming(method, handler.unary_stream), **codecs
            )
        else:
            return handler
        self._wrapped[method] = wrapped
        return wrapped

    def _unary(self, method: str, inner: Behavior) -> Behavior:
        fault, door = self.fault, self.door

        async def wrapped(request: Any, context: Any) -> Any:
            if fault is not None:
                await faults.enter(fault, method)
            return await _run(method, inner, request, context, door)

        return wrapped

    def _streaming(self, method: str, inner: Streaming) -> Streaming:
        fault, door = self.fault, self.door

        async def wrapped(request: Any, context: Any) -> AsyncGenerator[Any, None]:
            if fault is not None:
                await faults.enter(fault, method)
            # Closed here when gRPC stops reading (the caller went away), so the stream's own
            # cleanup and log line run then, not whenever the generator is collected.
            async with contextlib.aclosing(_stream(method, inner, request, context, door)) as out:
                async for response in out:
                    yield response

        return wrapped


def fingerprint(request: Message) -> str:
    """What makes two requests "the same content": every field but request_id."""
    copy = type(request)()
    copy.CopyFrom(request)
    if "request_id" in copy.DESCRIPTOR.fields_by_name:
        copy.ClearField("request_id")
    return hashlib.sha256(copy.SerializeToString(deterministic=True)).hexdigest()
