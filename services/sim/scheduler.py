"""The seeded scheduler: one runner advances at a time, and every await on a money path is a
point where the seed decides what happens next.

A runner is one operation (an RPC, or a background job's pass) and every task it makes; a
handler is one service's part of it (the RPC's own handler, each peer call's handler in the
other service), known to its tasks through a context variable that the tasks it starts inherit.
Before each Redis command, each peer call, each sleep and at a handler's start, the task stops
at a gate. When nothing runs (no command in flight, nothing ready in the event loop) the
scheduler opens one gate, chosen by the seed, after deciding what happens to its handler there:

- nothing: it goes on, until its next gate;
- a crash: the handler's process dies there: its tasks never go on and nothing of it is cleaned
  up; its own peer calls are dropped (their handlers cancelled, as a dropped connection does)
  and its caller is answered UNAVAILABLE;
- a cancel, as the caller's deadline would: `asyncio.CancelledError` in the handler at the await
  it is on (work it detached goes on, as it does under gRPC);
- a pause past its lease: it stops for a number of the others' steps; its locks' leases are
  moved to the past (and sometimes the clock past the recovery window) before the others go on.

So the order of every Redis command, and so every outcome, follows from the seed alone.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import hashlib
import random
from collections.abc import Callable, Coroutine
from typing import Any

import grpc

from services.sim.clock import SimClock
from services.sim.fences import FenceOrder
from services.sim.status import status_error

TICK_MS = 1  # the simulated time one step takes
CHANGE_POINT = 20  # one step in this many, the runner first in order drops to the back


@dataclasses.dataclass(eq=False)
class Runner:
    """One operation and everything it starts; what it leaves behind when it dies."""

    id: int
    label: str
    faulty: bool = True  # may be crashed, cancelled or paused (probes and checks may not)
    tokens: set[str] = dataclasses.field(default_factory=set)  # owner tokens it made
    keys: set[str] = dataclasses.field(default_factory=set)  # accounts and claims it touched
    faults: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(eq=False)
class Handler:
    runner: Runner
    service: str
    task: asyncio.Task[Any] | None = None
    dead: bool = False
    answer: asyncio.Future[Any] | None = None  # a peer call's: what its caller awaits
    calls: list[Handler] = dataclasses.field(default_factory=list)


HANDLER: contextvars.ContextVar[Handler | None] = contextvars.ContextVar(
    "sim_handler", default=None
)


@dataclasses.dataclass(eq=False)
class Gate:
    future: asyncio.Future[None]
    handler: Handler
    task: asyncio.Task[Any] | None
    kind: str  # start, redis, call, sleep
    what: str
    wake_ms: int = 0
    hold: int = 0  # a paused gate waits for this many of the others' steps


@dataclasses.dataclass
class FaultRates:
    """Per step of a faulty runner, in parts per 10,000."""

    crash: int = 12
    cancel: int = 12
    pause: int = 15
    past_recovery: int = 40  # of the pauses, in percent: also past the recovery window

    def scaled(self, factor: int) -> FaultRates:
        """A stormier run: crashes, cancels and pauses `factor` times as often."""
        return FaultRates(
            self.crash * factor, self.cancel * factor, self.pause * factor, self.past_recovery
        )


class Faults:
    """What to do to a runner when the world must react (set by the simulation): expire its
    leases, its claims, and start a recovery pass."""

    async def paused(self, runner: Runner, past_recovery: bool) -> None: ...

    async def crashed(self, runner: Runner) -> None: ...


class Scheduler:
    def __init__(self, seed: int, clock: SimClock, rates: FaultRates, faults: Faults) -> None:
        self.rng = random.Random(seed)
        self.clock, self.rates, self.faults = clock, rates, faults
        self.waiting: list[Gate] = []
        self.parked: list[Gate] = []  # the gates of dead handlers: never opened
        self.inflight = 0
        self._idle = asyncio.Event()
        self.steps = 0
        self.injected: dict[str, int] = {"crash": 0, "cancel": 0, "pause": 0}
        self.ranks: dict[int, float] = {}  # each runner's place in the order (`_chosen`)
        self.trace = hashlib.sha256()
        self.fences = FenceOrder()  # watched on the services' Redis clients (sim.clients)
        self._sleep = asyncio.sleep
        self._never: asyncio.Future[None] | None = None

    # -- the tasks' side --------------------------------------------------------------------
    async def gate(self, kind: str, what: str = "", sleep_s: float = 0.0) -> None:
        h = HANDLER.get()
        if h is None:
            return
        if h.dead:
            await self.never()
        loop = asyncio.get_running_loop()
        wake = self.clock.ms + int(sleep_s * 1000) if sleep_s > 0 else 0
        g = Gate(loop.create_future(), h, asyncio.current_task(), kind, what, wake)
        self.waiting.append(g)
        try:
            await g.future
        finally:
            if g in self.waiting:
                self.waiting.remove(g)

    async def never(self) -> None:
        if self._never is None:
            self._never = asyncio.get_running_loop().create_future()
        await asyncio.shield(self._never)

    async def sleep(self, delay: float, result: Any = None) -> Any:
        """asyncio.sleep, for a runner's task: a gate that opens once the clock has passed."""
        if delay <= 0 or HANDLER.get() is None:
            return await self._sleep(delay, result)
        await self.gate("sleep", f"{delay:.3f}", delay)
        return result

    def io_started(self) -> None:
        self.inflight += 1
        self._idle.clear()

    def io_done(self) -> None:
        self.inflight -= 1
        if not self.inflight:
            self._idle.set()

    # -- the driver's side ----------------------------------------------------------------
    def start(
        self, runner: Runner, service: str, work: Callable[[], Coroutine[Any, Any, Any]]
    ) -> Handler:
        h = Handler(runner, service)

        async def root() -> Any:
            HANDLER.set(h)  # (its first command is its first gate)
            return await work()

        h.task = asyncio.get_running_loop().create_task(root())
        return h

    async def settle(self) -> None:
        """Until nothing runs: no command in flight, nothing ready in the event loop."""
        loop = asyncio.get_running_loop()
        while True:
            if self.inflight:
                await self._idle.wait()
            if not self.inflight and not loop._ready:  # type: ignore[attr-defined]
                return
            await self._sleep(0)

    async def run(self) -> None:
        """Open gates until none is left: every runner done, dead, or waiting for ever."""
        while True:
            await self.settle()
            gate = self._next()
            if gate is None:
                return
            await self._open(gate)

    def _next(self) -> Gate | None:
        while True:
            now = self.clock.ms
            ready = [g for g in self.waiting if not g.hold and g.wake_ms <= now]
            if ready:
                gate = self._chosen(ready)
                self.waiting.remove(gate)
                if len(ready) < len(self.waiting) + 1:
                    for g in self.waiting:
                        g.hold = max(0, g.hold - 1)
                return gate
            held = [g for g in self.waiting if g.hold]
            for g in held:  # nobody else is left to go first: the pause ends
                g.hold = 0
            if held:
                continue
            sleepers = [g.wake_ms for g in self.waiting]
            if not sleepers:
                return None
            self.clock.move_ms(min(sleepers))

    def _chosen(self, ready: list[Gate]) -> Gate:
        """The gate to open: mostly the one whose runner stands first in a seeded order of the
        runners, so that one runner goes far ahead while another stands still for many steps
        (the interleavings where a race is lost); now and then the first runner drops to the
        back of that order (probabilistic concurrency testing, PCT); otherwise any at random."""
        if len(ready) == 1:
            return ready[0]
        if self.rng.randrange(4) == 0:
            return ready[self.rng.randrange(len(ready))]
        rank = self.ranks
        for g in ready:
            if g.handler.runner.id not in rank:
                rank[g.handler.runner.id] = self.rng.random()
        gate = max(ready, key=lambda g: rank[g.handler.runner.id])
        if self.rng.randrange(CHANGE_POINT) == 0:
            rank[gate.handler.runner.id] = -self.rng.random()
        return gate

    async def _open(self, g: Gate) -> None:
        self.steps += 1
        self.clock.advance(TICK_MS)
        fault = self._fault(g)
        self.trace.update(f"{g.handler.runner.id} {g.kind} {g.what} {fault}\n".encode())
        if fault == "crash":
            self._crash(g)
            await self.faults.crashed(g.handler.runner)
        elif fault == "cancel":
            assert g.handler.task is not None
            g.handler.task.cancel()
            if not g.future.done():
                g.future.set_result(None)
        elif fault == "pause":  # just past the lease (a GC pause), or long past it
            g.hold = self.rng.randint(1, 8) if self.rng.randrange(2) else self.rng.randint(5, 300)
            self.waiting.append(g)
            past = self.rng.randrange(100) < self.rates.past_recovery
            await self.faults.paused(g.handler.runner, past)
        elif not g.future.done():
            g.future.set_result(None)

    def _fault(self, g: Gate) -> str:
        if not g.handler.runner.faulty or g.future.done():
            return ""
        roll = self.rng.randrange(10_000)
        r = self.rates
        task = g.handler.task
        if roll < r.crash:
            fault = "crash"
        elif roll < r.crash + r.cancel and task is not None and not task.done():
            fault = "cancel"
        elif roll < r.crash + r.cancel + r.pause:
            fault = "pause"
        else:
            return ""
        self.injected[fault] += 1
        g.handler.runner.faults.append(f"{fault} at {g.kind} {g.what}")
        return fault

    def _crash(self, g: Gate) -> None:
        """The handler's process dies at this gate: its tasks stop for good, its calls drop."""
        h = g.handler
        h.dead = True
        self.parked.append(g)
        for other in [w for w in self.waiting if w.handler is h]:
            self.waiting.remove(other)
            self.parked.append(other)
        for callee in h.calls:
            if callee.task is not None:
                callee.task.cancel()
        if h.answer is not None and not h.answer.done():
            h.answer.set_exception(unavailable())


def unavailable() -> Exception:
    error: Exception = status_error(grpc.StatusCode.UNAVAILABLE, "the peer's process died")
    return error
