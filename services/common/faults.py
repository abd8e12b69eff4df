"""Faults on purpose (README "Money safety: the rule every money path follows"), honoured only
when GONGJI_ENV=test.

`GONGJI_FAULT=<action>:<Method>:<n>` stops one call of the RPC `Method` at its n-th fault point.
The points are not named by hand: point 1 is the handler's start, and every Redis command and
every peer call made on the call's behalf (also by work it leaves running) adds one when it
returns. So a test walks n = 1, 2, ... through every await of a money path until a call gets
through unharmed, and a new await in the code is covered without touching the test.

Actions: `kill` (SIGKILL: a crash), `pause` (SIGSTOP: a process that stops for a while) and
`cancel`: the call stops there until the caller's deadline passes and gRPC cancels the handler at
that very await; work the handler left running waits at its point until then, and goes on.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import logging
import os
import signal
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import redis.asyncio as aioredis

log = logging.getLogger(__name__)
ACTIONS = ("kill", "pause", "cancel")


@dataclasses.dataclass(frozen=True)
class Fault:
    action: str
    method: str
    n: int

    @classmethod
    def parse(cls, text: str) -> Fault:
        action, method, n = text.split(":")
        if action not in ACTIONS or not method or int(n) < 1:
            raise ValueError(text)
        return cls(action, method, int(n))


@dataclasses.dataclass
class _Count:
    fault: Fault
    handler: asyncio.Task[Any] | None
    seen: int = 0


_current: contextvars.ContextVar[_Count | None] = contextvars.ContextVar("fault", default=None)
_fired: set[Fault] = set()  # a fault strikes once per process: the retries that follow go through


async def enter(fault: Fault | None, method: str) -> None:
    """At a handler's start: count this call's points if the fault is for its method."""
    if fault is not None and fault not in _fired and method.rsplit("/", 1)[-1] == fault.method:
        _current.set(_Count(fault, asyncio.current_task()))
        await point()


async def point() -> None:
    count = _current.get()
    if count is None or count.fault in _fired:
        return
    count.seen += 1
    if count.seen != count.fault.n:
        return
    _fired.add(count.fault)
    log.warning("fault injected", extra={"fields": {**dataclasses.asdict(count.fault)}})
    if count.fault.action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif count.fault.action == "pause":
        os.kill(os.getpid(), signal.SIGSTOP)
    elif count.handler is None or asyncio.current_task() is count.handler:
        await asyncio.Event().wait()  # until the deadline cancels the handler right here
    else:
        await asyncio.wait([count.handler])  # left-running work: on once the handler is gone


class PointedRedis(aioredis.Redis):
    """A Redis client whose every command is a fault point when it returns."""

    pointed = True  # each command counts on its own caller's behalf: never coalesced

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        result = await super().execute_command(*args, **options)  # type: ignore[no-untyped-call]
        await point()
        return result


class PointedCalls(grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    """Makes every peer call a fault point when it returns."""

    async def intercept_unary_unary(
        self,
        continuation: Callable[[Any, Any], Awaitable[Any]],
        details: Any,
        request: Any,
    ) -> Any:
        call = await continuation(details, request)
        try:
            return await call
        finally:
            await point()
