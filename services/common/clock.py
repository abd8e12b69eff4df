"""Time, injectable. Business dates are Beijing time (UTC+8, no daylight saving)."""

from __future__ import annotations

import datetime as dt
from typing import Protocol

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


def beijing_today(clock: Clock) -> dt.date:
    return clock.now().astimezone(BEIJING).date()
