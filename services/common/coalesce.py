"""Redis commands issued in one turn of the event loop, sent together.

Under load, many calls are in flight in one process at once, each awaiting its own commands. A
command's cost on this kind of machine is its round trip (a socket write and a read, on each
side), not its work: a payment under Redis Cluster makes nine of them. So the commands that
coroutines issue in the same turn of the loop go out as one pipeline (per node, under Redis
Cluster: one write and one read each) instead of one round trip each; each caller gets its own
reply or its own error, in the order it issued them. A lone command goes out as it would have,
with no wait: the batch is sent at the end of the turn it was issued in.

Nothing about a command changes: a script is still one atomic script, a refusal still comes
back to its caller alone, and a command whose caller was cancelled meanwhile still runs, as it
would once written to the socket. Only the commands of one key (or the keys of one slot) are
batched, the ones a pipeline sends to one node: not a blocking read (it would hold back the
others), nor what goes to every node (SCRIPT LOAD) or to none in particular.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis

Send = Callable[..., Awaitable[Any]]
_BATCHED = frozenset({
    "EVALSHA", "GET", "SET", "DEL", "EXISTS", "INCR", "HGET", "HMGET", "HGETALL", "HSET",
    "HSETNX", "HDEL", "ZADD", "ZREM", "ZSCORE", "ZRANGE", "ZRANGEBYSCORE", "ZCARD", "LRANGE",
    "LINDEX", "LLEN", "XADD", "XRANGE", "XLEN",
})  # fmt: skip
_Pending = tuple[tuple[Any, ...], dict[str, Any], "asyncio.Future[Any]"]


class Coalescer:
    def __init__(self, client: aioredis.Redis, send_one: Send) -> None:
        self.client, self.send_one = client, send_one
        self.pending: list[_Pending] = []
        self.sending: set[asyncio.Task[None]] = set()  # held, or a task in flight could be lost
        self.batches = 0  # how many pipelines went out (for the tests and the benchmarks)

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        if str(args[0]).upper() not in _BATCHED or "target_nodes" in options:
            return await self.send_one(*args, **options)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        if not self.pending:
            loop.call_soon(self._flush)
        self.pending.append((args, options, future))
        return await future

    def _flush(self) -> None:
        batch, self.pending = self.pending, []
        task = asyncio.ensure_future(self._send(batch))
        self.sending.add(task)
        task.add_done_callback(self.sending.discard)

    async def _send(self, batch: list[_Pending]) -> None:
        if len(batch) == 1:
            args, options, future = batch[0]
            try:
                _settle(future, await self.send_one(*args, **options))
            except Exception as e:
                _settle(future, e)
            return
        self.batches += 1
        try:
            async with self.client.pipeline(transaction=False) as pipe:
                for args, options, _ in batch:
                    pipe.execute_command(*args, **options)
                results = await pipe.execute(raise_on_error=False)
        except BaseException as e:  # the connection (or a stop): every command answers it
            for _, _, future in batch:
                _settle(future, e if isinstance(e, Exception) else ConnectionError(str(e)))
            if not isinstance(e, Exception):
                raise
            return
        for (_, _, future), result in zip(batch, results, strict=True):
            _settle(future, result)


def _settle(future: asyncio.Future[Any], result: Any) -> None:
    if future.done():  # its caller was cancelled: the command ran all the same
        return
    if isinstance(result, Exception):
        future.set_exception(result)
    else:
        future.set_result(result)


def coalescing(client: aioredis.Redis) -> aioredis.Redis:
    """The client, its commands from now on coalesced (its pipelines are not: they are
    batches already)."""
    coalescer = Coalescer(client, client.execute_command)
    client.execute_command = coalescer.execute_command  # type: ignore[method-assign]
    client.coalescer = coalescer  # type: ignore[attr-defined]
    return client
