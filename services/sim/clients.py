"""The services' Redis clients under the simulator: each command (and each pipeline, one batch)
waits at a gate of the scheduler before it goes out, and is counted while it is in flight so
that the scheduler knows when nothing runs. What a runner touches (the accounts whose locks it
may hold, the request claims it made) is noted for the faults that must find them again."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any, cast

import redis.asyncio as aioredis
from redis.asyncio.client import Pipeline
from redis.asyncio.cluster import ClusterPipeline

from services.common.redisdb import HiredisPacking
from services.sim.scheduler import HANDLER, Scheduler
from services.sim.wire import Wire

# An account's hash (its lock lives there) and a request's claim (services.common.idempotency).
_NOTED = re.compile(r"acct:\{[0-9X]{18}\}$|(acct|bind|setl):req:")


def _what(args: tuple[Any, ...]) -> str:
    """A command as the trace names it: its name and first key (a script by its sha's start)."""
    name = str(args[0]).upper()
    if name == "EVALSHA" and len(args) > 3:
        return f"EVALSHA {str(args[1])[:8]} {args[3]}"
    return f"{name} {args[1]}" if len(args) > 1 else name


def _note(args: tuple[Any, ...]) -> None:
    h = HANDLER.get()
    if h is None or str(args[0]).upper() != "EVALSHA":
        return
    keys = args[3 : 3 + int(args[2])]
    h.runner.keys.update(k for k in map(str, keys) if _NOTED.match(k))


async def _gated(sched: Scheduler, what: str, send: Callable[[], Awaitable[Any]]) -> Any:
    await sched.gate("redis", what)
    sched.io_started()
    try:
        return await send()
    finally:
        sched.io_done()


class SimRedis(aioredis.Redis):
    """A client whose commands go one at a time over a wire of its own (services.sim.wire);
    its pipelines through redis-py's connections."""

    pointed = True  # every command is a point: no coalescing (services.account.server)
    sched: Scheduler
    wire: Wire | None = None

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        _note(args)
        reply = await _gated(self.sched, _what(args), lambda: self._ask(args, options))
        self.sched.fences.seen(args, reply)
        return reply

    async def _ask(self, args: tuple[Any, ...], options: dict[str, Any]) -> Any:
        if self.wire is None or self.wire.transport is None:
            kwargs = self.connection_pool.connection_kwargs
            self.wire = await Wire.open(kwargs["host"], kwargs["port"])
        reply = await self.wire.ask(args)
        options.pop("keys", None)  # as redis-py's parse_response: for its cache only
        name = str(args[0]).split(" ")[0].upper()
        callback = self.response_callbacks.get(name)
        return canonical(name, callback(reply, **options) if callback else reply)

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        if self.wire is not None:
            self.wire.close()
        await super().aclose(close_connection_pool)

    def pipeline(self, transaction: bool = True, shard_hint: str | None = None) -> Pipeline:
        pipe = SimPipeline(self.connection_pool, self.response_callbacks, transaction, shard_hint)
        pipe.sched = self.sched
        return pipe


class SimPipeline(Pipeline):
    sched: Scheduler

    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        what = f"PIPELINE {len(self.command_stack)}"
        send = super().execute
        return cast(list[Any], await _gated(self.sched, what, lambda: send(raise_on_error)))


class SimCluster(aioredis.RedisCluster):
    pointed = True
    sched: Scheduler

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        _note(args)
        send = super().execute_command
        found = await _gated(self.sched, _what(args), lambda: send(*args, **kwargs))
        self.sched.fences.seen(args, found)
        return canonical(str(args[0]).upper(), found)

    def pipeline(self, transaction: Any | None = None, shard_hint: Any | None = None) -> Any:
        pipe = SimClusterPipeline(self, transaction)  # type: ignore[abstract]
        pipe.sched = self.sched
        return pipe


class SimClusterPipeline(ClusterPipeline):
    sched: Scheduler

    async def execute(self, raise_on_error: bool = True, allow_redirections: bool = True) -> Any:
        what = f"PIPELINE {len(self)}"
        send = super().execute
        return await _gated(self.sched, what, lambda: send(raise_on_error, allow_redirections))


def canonical(command: str, reply: Any) -> Any:
    """A reply whose order Redis leaves open (a hash's fields: their order follows the random
    seed a Redis server draws at its start), in one order: by field."""
    if command == "HGETALL" and isinstance(reply, dict):
        return dict(sorted(reply.items()))
    if command == "HSCAN" and isinstance(reply, tuple | list) and isinstance(reply[1], dict):
        return (reply[0], dict(sorted(reply[1].items())))
    return reply


def connect(sched: Scheduler, url: str, mode: str) -> aioredis.Redis:
    """What services.common.redisdb.connect gives the services, under the simulator."""
    options: dict[str, Any] = {
        "decode_responses": True,
        "socket_connect_timeout": 5,
        "socket_timeout": 30,
        "max_connections": 256,
    }
    if mode == "cluster":
        cluster = cast(SimCluster, SimCluster.from_url(url, **options))
        cluster.nodes_manager.connection_kwargs["connection_class"] = HiredisPacking
        cluster.sched = sched
        return cast(aioredis.Redis, cluster)
    client = cast(SimRedis, SimRedis.from_url(url, connection_class=HiredisPacking, **options))
    client.sched = sched
    return client
