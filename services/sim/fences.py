"""The order of fencing tokens, watched on the wire: every taking of an account's lock by a new
owner gets a fence above every fence that account gave before (services/account/locks.py), as an
exact integer however high it runs; only its holder reading again gets its own once more. A stale
holder is refused by comparing fences, so two owners given one fence would both pass: a lock no
longer serializing anything, whether or not money moves wrong that time."""

from __future__ import annotations

from typing import Any

import orjson


class FenceOrder:
    def __init__(self) -> None:
        self.last: dict[str, tuple[int, str]] = {}  # account key: (fence, owner) last given
        self.broken: list[str] = []

    def seen(self, args: tuple[Any, ...], reply: Any) -> None:
        """A script's reply: if it is a lock taken (lock_read: the account's fields and the
        fence, for an owner token), its fence checked against the account's last."""
        if not isinstance(reply, str) or '"fence"' not in reply or '"fields"' not in reply:
            return
        n = int(args[2])
        account, owner = str(args[3]), str(args[4 + n]) if len(args) > 4 + n else ""
        if not owner:  # read only: no lock, no new fence
            return
        fence = int(orjson.loads(reply)["fence"])
        before = self.last.get(account)
        if before is not None and before != (fence, owner) and fence <= before[0]:
            self.broken.append(
                f"fence order: {account}: owner {owner} was given fence {fence}, "
                f"not above {before[0]} given before to {before[1]}"
            )
        self.last[account] = (fence, owner)

    def taken(self) -> list[str]:
        """What broke since the last call."""
        found, self.broken = self.broken, []
        return found
