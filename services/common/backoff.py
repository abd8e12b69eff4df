"""Pauses between attempts that double from a first one up to a ceiling, each (by default)
jittered to 50-150 % of its value, so callers that failed together do not retry together."""

from __future__ import annotations

import random


class Backoff:
    def __init__(self, first_s: float, most_s: float, jitter: bool = True) -> None:
        self.first_s, self.most_s, self.jitter = first_s, most_s, jitter
        self._next_s = first_s

    def pause(self) -> float:
        """The pause before the next attempt; the one after it is twice as long (at most
        `most_s`)."""
        pause = self._next_s * (0.5 + random.random()) if self.jitter else self._next_s
        self._next_s = min(self._next_s * 2, self.most_s)
        return pause

    def reset(self) -> None:
        """After a success: the next failure starts from the first pause again."""
        self._next_s = self.first_s
