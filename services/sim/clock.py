"""Simulated time: one clock for business dates and for the durations the services measure.

The services read business dates and timestamps from the `Clock` they are built with. Durations
(a caller's deadline, a lock's wait, a request's wait for a duplicate, the recovery sweep's
back-off) and the times of the pending marks are read from `time.monotonic()` and `time.time()`
in four modules; for the length of a run the simulator gives those modules this clock in place
of the `time` module (`patched`), so a wait of two seconds is two simulated seconds, decided by
the schedule and never by how fast the machine is.

Redis keeps its own clock (the scripts' TIME: lock leases, payment times). Leases are long (a
minute) so that none runs out by itself during a run; a runner "paused past its lease" has its
leases moved to the past by command (services.sim.leases), which is what the passing of that
much time would do to them, decided by the seed.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib
import time as real_time
from collections.abc import Iterator
from typing import Any

from services.common.clock import BEIJING

# Where the services read durations and mark times from the `time` module.
TIMED_MODULES = (
    "services.account.locks",
    "services.common.idempotency",
    "services.common.intents",
    "services.common.rpc",
)
# Behind the Redis server's real clock for years of simulated time: the binding service
# compares a binding's creation (this clock) with an account event's time (Redis's).
START = dt.datetime(2020, 1, 1, 9, 0, tzinfo=BEIJING)


class SimClock:
    """A clock that moves only when the simulator moves it: `now()` for the services' Clock,
    `time()` and `monotonic()` for the modules that measure durations."""

    def __init__(self, at: dt.datetime = START) -> None:
        self.ms = int(at.timestamp() * 1000)

    def now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.ms / 1000, dt.UTC)

    def today(self) -> dt.date:
        return self.now().astimezone(BEIJING).date()

    def time(self) -> float:
        return self.ms / 1000

    def monotonic(self) -> float:
        return self.ms / 1000

    def advance(self, ms: int) -> None:
        self.ms += max(0, int(ms))

    def move_to(self, at: dt.datetime) -> None:
        self.move_ms(int(at.timestamp() * 1000))

    def move_ms(self, ms: int) -> None:
        self.ms = max(self.ms, ms)


class _Time:
    """The `time` module as the patched modules see it: this clock's time and monotonic time,
    everything else the real module's."""

    def __init__(self, clock: SimClock) -> None:
        self._clock = clock

    def time(self) -> float:
        return self._clock.time()

    def monotonic(self) -> float:
        return self._clock.monotonic()

    def __getattr__(self, name: str) -> Any:
        return getattr(real_time, name)


@contextlib.contextmanager
def patched(clock: SimClock) -> Iterator[None]:
    """The modules of TIMED_MODULES read this clock until the block ends."""
    modules = [importlib.import_module(name) for name in TIMED_MODULES]
    saved = [m.time for m in modules]
    for m in modules:
        m.time = _Time(clock)  # type: ignore[attr-defined]
    try:
        yield
    finally:
        for m, t in zip(modules, saved, strict=True):
            m.time = t  # type: ignore[attr-defined]
