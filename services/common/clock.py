"""Time, injectable. Business dates are Beijing time (UTC+8, no daylight saving)."""

from __future__ import annotations

import datetime as dt
from typing import Protocol

from google.protobuf.timestamp_pb2 import Timestamp

BEIJING = dt.timezone(dt.timedelta(hours=8), "Asia/Shanghai")


class Clock(Protocol):
    def now(self) -> dt.datetime:
        """An aware datetime."""
        ...


class SystemClock:
    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)


class FixedClock:
    """A clock that moves only when told to: for tests that must not sleep."""

    def __init__(self, at: dt.datetime) -> None:
        self._at = at

    def now(self) -> dt.datetime:
        return self._at

    def advance(self, seconds: float) -> None:
        self._at += dt.timedelta(seconds=seconds)

    def move_to(self, at: dt.datetime) -> None:
        self._at = at


def beijing_today(clock: Clock) -> dt.date:
    return clock.now().astimezone(BEIJING).date()


def now_ms(clock: Clock) -> int:
    """The clock's time, in milliseconds since the epoch (what the services stamp)."""
    return int(clock.now().timestamp() * 1000)


def timestamp(ms: int) -> Timestamp:
    """Milliseconds since the epoch as a protobuf Timestamp."""
    return Timestamp(seconds=ms // 1000, nanos=(ms % 1000) * 1_000_000)


def ms_of(t: Timestamp) -> int:
    return t.seconds * 1000 + t.nanos // 1_000_000
