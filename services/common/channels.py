"""Client channels to the services: keepalive matched to the servers, retries on UNAVAILABLE,
a bearer token on every call, and TLS when credentials are given."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import grpc

from services.common.faults import PointedCalls
from services.common.security import Security
from services.common.tracing import Tracing

_RETRY = json.dumps(
    {
        "methodConfig": [
            {
                "name": [{}],
                "retryPolicy": {
                    "maxAttempts": 4,
                    "initialBackoff": "0.05s",
                    "maxBackoff": "1s",
                    "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        ]
    }
)

CLIENT_OPTIONS = [
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.enable_retries", 1),
    ("grpc.service_config", _RETRY),
    # A peer that went away (a restart) is tried again at most every 2 s, not up to gRPC's
    # default 120 s: once it is back, calls reach it within about 2 s instead of failing fast.
    ("grpc.initial_reconnect_backoff_ms", 250),
    ("grpc.max_reconnect_backoff_ms", 2_000),
]


class Bearer(grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    """Sends `authorization: <header()>` with every unary call."""

    def __init__(self, header: Callable[[], str]) -> None:
        self.header = header

    async def intercept_unary_unary(
        self, continuation: Callable[..., Any], details: Any, request: Any
    ) -> Any:
        return await continuation(_authorized(details, self.header()), request)


class StreamBearer(grpc.aio.UnaryStreamClientInterceptor):  # type: ignore[misc]
    """The same for server-streaming calls (WatchPayments): a channel files each interceptor
    under one kind of call only."""

    def __init__(self, header: Callable[[], str]) -> None:
        self.header = header

    async def intercept_unary_stream(
        self, continuation: Callable[..., Any], details: Any, request: Any
    ) -> Any:
        return await continuation(_authorized(details, self.header()), request)


def _authorized(details: Any, header: str) -> Any:
    return details._replace(metadata=(*(details.metadata or ()), ("authorization", header)))


def target(address: str) -> str:
    """The gRPC target of an address, or of a comma-separated list of a service's replicas
    (`127.0.0.1:50051,127.0.0.1:50061`), which calls then reach in turn (round robin)."""
    if "," not in address:
        return address
    return "ipv4:" + ",".join(a.strip() for a in address.split(","))


def channel(
    address: str,
    header: Callable[[], str] | None = None,
    credentials: grpc.ChannelCredentials | None = None,
    pointed: bool = False,
    options: list[tuple[str, Any]] = CLIENT_OPTIONS,
    tracing: Tracing | None = None,
) -> grpc.aio.Channel:
    """`address`: one, or a comma-separated list of a service's replicas (round robin).
    `header`: the bearer token to send; `credentials`: TLS (else plaintext); `pointed`:
    every call is a fault point (tests that inject faults); `options`: keepalive and retries of
    UNAVAILABLE by default; `tracing`: each call a span, its context sent to the server."""
    chain: list[Any] = tracing.client_interceptors() if tracing else []
    if header:
        chain += [Bearer(header), StreamBearer(header)]
    if pointed:
        chain.append(PointedCalls())
    interceptors = chain or None
    if "," in address:  # each replica on the list takes its turn
        options = [*options, ("grpc.lb_policy_name", "round_robin")]
    if credentials is None:
        return grpc.aio.insecure_channel(target(address), options, interceptors=interceptors)
    return grpc.aio.secure_channel(target(address), credentials, options, interceptors=interceptors)


def peer_channel(
    address: str, security: Security, pointed: bool = False, tracing: Tracing | None = None
) -> grpc.aio.Channel:
    """A service's channel to a peer: its own service token, its TLS credentials."""
    header = security.token.header if security.token else None
    return channel(address, header, security.channel_credentials, pointed, tracing=tracing)
