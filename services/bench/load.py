"""Drive one operation from many callers for a while or a count, and keep what they saw:
latencies and outcomes (OK, or the status code and the ErrorInfo reason)."""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import random
import time
from collections.abc import Awaitable, Callable

import grpc

from services.common.rpc import reason_of

Operation = Callable[[int, random.Random], Awaitable[object]]


@dataclasses.dataclass
class Run:
    seconds: float = 0.0
    latencies_ms: list[float] = dataclasses.field(default_factory=list)
    outcomes: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)

    @property
    def count(self) -> int:
        return len(self.latencies_ms)

    @property
    def rps(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies_ms)
        if not ordered:
            return 0.0
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


async def drive(
    operation: Operation, callers: int, seconds: float, count: int,
    progress: Callable[[int], None] = lambda n: None, seed: int = 1,
) -> Run:  # fmt: skip
    """Run `operation` from `callers` at once until `seconds` have passed or `count` operations
    are made (0 = no limit on that side)."""
    run = Run()
    started = time.perf_counter()
    stop_at = started + seconds if seconds else float("inf")
    left = [count or -1]

    async def caller(i: int) -> None:
        rng = random.Random(seed * 1_000 + i)
        while time.perf_counter() < stop_at and left[0] != 0:
            left[0] -= 1
            begun = time.perf_counter()
            try:
                await operation(i, rng)
                outcome = "OK"
            except grpc.aio.AioRpcError as e:
                outcome = f"{e.code().name} {reason_of(e)}".strip()
            run.latencies_ms.append((time.perf_counter() - begun) * 1000)
            run.outcomes[outcome] += 1
            progress(1)

    await asyncio.gather(*(caller(i) for i in range(callers)))
    run.seconds = time.perf_counter() - started
    return run
