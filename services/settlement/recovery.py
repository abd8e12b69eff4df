"""The sweeper: finishes journals whose owner died or gave up (DESIGN "Recovery").

Every replica runs one. Each pass takes the due entries of the recovery queue and pushes each
back by a lease in the same script, so two sweepers never take the same entry at once, a sweeper
that dies leaves its entries due again, and an entry that fails (its account service down, say)
is tried again after the lease while every other entry goes on being finished: one stuck
settlement cannot starve the rest. The journal's compare-and-set moves make even a double run
harmless.
"""

from __future__ import annotations

import asyncio
import logging

from services.settlement.coordinator import Coordinator, now_ms

log = logging.getLogger(__name__)


class Sweeper:
    def __init__(self, coordinator: Coordinator, interval_s: float = 0.5) -> None:
        self.coordinator, self.interval_s = coordinator, interval_s
        self.lease_ms = min(10_000, max(1_000, coordinator.recovery_after_ms))

    async def run(self) -> None:
        while True:
            try:
                await self.sweep()
            except Exception:  # Redis away: try again next pass
                log.warning("recovery pass failed", exc_info=True)
            await asyncio.sleep(self.interval_s)

    async def sweep(self) -> int:
        """One pass; returns how many journals it finished."""
        done = 0
        for payment_id in await self.coordinator.store.claim_due(now_ms(), self.lease_ms):
            try:
                await self.coordinator.recover(payment_id)
                done += 1
            except Exception:
                log.warning("recovery deferred", exc_info=True,
                            extra={"fields": {"payment_id": payment_id}})  # fmt: skip
        return done
