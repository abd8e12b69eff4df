"""The aio server bootstrap shared by every service: health, reflection, error mapping, drain.

`create_server(address, services)` binds (port 0 in tests), starts, and returns the server with
its bound port. `serve(settings, build)` is a service's whole life: build the app, serve until
SIGTERM or SIGINT, then report NOT_SERVING, let calls in flight finish for a grace period, stop
background work and close connections.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import grpc
import redis.asyncio as aioredis
import uvloop
from google.protobuf import descriptor_pool
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from services.common import access, logs, metrics
from services.common.access import Gate, Resolver
from services.common.auth import Guard
from services.common.config import ConfigError, PortTaken, Settings
from services.common.faults import Fault
from services.common.policy import PolicyError
from services.common.registry import RegistryError
from services.common.rpc import Door, ErrorMapper
from services.common.security import Security
from services.common.tracing import Tracing

log = logging.getLogger(__name__)

# Keepalive is set on both sides together: a client that pings more often than the server
# permits gets its connection closed (too_many_pings).
MAX_REQUEST_BYTES = 1 << 20  # the largest real request (100 sources, a bill) is a few KiB
SERVER_OPTIONS = [
    ("grpc.max_receive_message_length", MAX_REQUEST_BYTES),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.http2.min_recv_ping_interval_without_data_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    # gRPC shares a port between processes by default: a second stack would silently answer
    # half of the first one's calls from its own data. A taken port stops the start instead.
    ("grpc.so_reuseport", 0),
]
REDIS_PROBE_S = 1.0  # how often health looks at Redis


@dataclasses.dataclass
class Service:
    name: str  # full proto name, e.g. "gongji.account.v1.AccountService"
    add: Callable[[Any, grpc.aio.Server], None]
    servicer: Any


@dataclasses.dataclass
class App:
    services: list[Service]
    background: list[Callable[[], Coroutine[Any, Any, None]]] = dataclasses.field(
        default_factory=list
    )
    close: Callable[[], Awaitable[None]] | None = None
    fault: Fault | None = None  # tests only: services.common.faults
    security: Security | None = None  # None: no authentication (unit tests of the servers)
    # RPC name -> whose record its request names (access.Owners rows)
    resolvers: dict[str, Resolver] = dataclasses.field(default_factory=dict)
    redis: aioredis.Redis | None = None  # health says NOT_SERVING while it does not answer
    tracing: Tracing | None = None  # a span per call, joined to the caller's trace
    # Called when the drain begins, before calls in flight get their grace: what waits on
    # something (a long poll, a stream) answers now instead of at the end of the grace.
    on_drain: list[Callable[[], None]] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Running:
    server: grpc.aio.Server
    port: int
    health: health.aio.HealthServicer
    tasks: list[asyncio.Task[None]]
    on_drain: list[Callable[[], None]] = dataclasses.field(default_factory=list)

    async def stop(self, grace_s: float) -> None:
        await self.health.enter_graceful_shutdown()
        for drain in self.on_drain:
            drain()
        await self.server.stop(grace_s)
        for task in self.tasks:
            task.cancel()
        if self.tasks:  # a task stuck in I/O must not hold up the exit
            await asyncio.wait(self.tasks, timeout=5)


def _door(app: App) -> Door:
    pool = descriptor_pool.Default()
    for service in app.services:
        for method in pool.FindServiceByName(service.name).methods:
            rpc = method.name
            if access.needs_resolver(rpc) and rpc not in app.resolvers:
                raise RuntimeError(f"{service.name}: {rpc} needs a resolver for its access rule")
    guard = app.security.guard if app.security else Guard(None)
    return Door(guard, Gate(app.resolvers))


async def create_server(address: str, app: App) -> Running:
    door = _door(app)
    traced = app.tracing.server_interceptors() if app.tracing else []
    server = grpc.aio.server(
        interceptors=[*traced, ErrorMapper(door, app.fault)], options=SERVER_OPTIONS
    )
    health_servicer = health.aio.HealthServicer()
    for service in app.services:
        service.add(service.servicer, server)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names = [s.name for s in app.services]
    reflection.enable_server_reflection(
        [
            *names,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        ],
        server,
    )
    port = _listen(server, address, app.security.server_credentials if app.security else None)
    await server.start()
    status = Status(health_servicer, ["", *names])
    await status.set(True)
    jobs = [*app.background]
    if app.redis is not None:
        jobs.append(functools.partial(status.follow, app.redis))
    tasks = [asyncio.create_task(_forever(job)) for job in jobs]
    return Running(server, port, health_servicer, tasks, app.on_drain)


def _listen(
    server: grpc.aio.Server, address: str, credentials: grpc.ServerCredentials | None
) -> int:
    try:
        if credentials is None:
            port = server.add_insecure_port(address)
        else:
            port = server.add_secure_port(address, credentials)
    except RuntimeError:  # grpc's "Failed to bind to address"
        port = 0
    if not port:
        raise PortTaken(f"cannot listen on {address}: the port is taken (or not this host's)")
    return int(port)


@dataclasses.dataclass
class Status:
    """What health answers, overall and per service: SERVING while Redis answers (a service
    that cannot reach it can only fail, so a load balancer should send the work elsewhere)."""

    health: health.aio.HealthServicer
    names: list[str]
    serving: bool = False

    async def set(self, serving: bool) -> None:
        status = health_pb2.HealthCheckResponse.SERVING if serving else (
            health_pb2.HealthCheckResponse.NOT_SERVING
        )  # fmt: skip
        for name in self.names:
            await self.health.set(name, status)
        self.serving = serving

    async def follow(self, redis: aioredis.Redis) -> None:
        while True:
            try:
                async with asyncio.timeout(REDIS_PROBE_S):
                    await redis.ping()
                up = True
            except Exception:
                up = False
            metrics.REDIS_UP.set(1 if up else 0)
            if up != self.serving:
                log.warning("redis %s", "answers: SERVING" if up else "unreachable: NOT_SERVING")
                await self.set(up)
            await asyncio.sleep(REDIS_PROBE_S)


async def _forever(job: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Background work restarts after an error instead of dying silently."""
    while True:
        try:
            await job()
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("background job failed; restarting in 1 s")
            await asyncio.sleep(1)


def main(service: str, build: Callable[[Settings], Awaitable[App]]) -> None:
    """A service process: settings from the environment, JSON logs, serve until signalled.
    A missing setting or a malformed policy file stops it at once with a clear message."""
    try:
        settings = Settings.from_env(service)
        logs.setup(settings.log_level)
        uvloop.run(serve(settings, build))
    except (ConfigError, PolicyError, RegistryError, PortTaken) as e:
        sys.exit(f"{service}: {e}")


async def serve(settings: Settings, build: Callable[[Settings], Awaitable[App]]) -> None:
    app = await build(settings)
    if settings.metrics_addr:
        metrics.serve(settings.metrics_addr)
    running = await create_server(settings.listen_addr, app)
    log.info(
        "serving",
        extra={
            "fields": {
                "service": settings.service,
                "address": settings.listen_addr,
                "metrics": settings.metrics_addr or "off",
            }
        },
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("draining", extra={"fields": {"grace_s": settings.drain_grace_s}})
    await running.stop(settings.drain_grace_s)
    if app.close:
        await app.close()
    if app.tracing:
        app.tracing.shutdown()
    log.info("stopped")
