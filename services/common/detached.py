"""Work that outlives its handler.

A caller's deadline reaches a handler as `asyncio.CancelledError` at whatever await it is on.
Work on money that has begun must not stop there half-way: `Detached.run` awaits the work
through `asyncio.shield`, so the handler's cancellation stops the answer, not the work, which
runs to its end and leaves its record finished for the retry.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")


class Detached:
    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()  # asyncio keeps only weak references

    async def run(self, work: Coroutine[Any, Any, T]) -> T:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return await asyncio.shield(task)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # Its handler reported it, or its caller had gone: nothing is left to tell.
            log.debug("detached work ended with an error", exc_info=task.exception())

    async def drain(self, timeout_s: float = 5.0) -> None:
        """At shutdown: let work whose callers have gone finish."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout_s)
