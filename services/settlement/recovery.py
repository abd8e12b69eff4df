"""The sweeper: finishes settlements whose owner died, by the journal's decision.

PENDING past its recovery time -> ABORTED and its holds voided (a hold never placed is voided as
a tombstone, so a late placement is refused); COMMITTING -> its holds committed -> SETTLED.
Every replica runs one; a short claim per settlement keeps two sweepers off the same one, and
the journal's compare-and-set decisions make even a double run harmless.
"""

from __future__ import annotations

import asyncio
import logging
import secrets

from services.settlement import store as st
from services.settlement.coordinator import Coordinator, now_ms

log = logging.getLogger(__name__)


class Sweeper:
    def __init__(self, coordinator: Coordinator, interval_s: float = 1.0) -> None:
        self.coordinator, self.interval_s = coordinator, interval_s
        self.owner = secrets.token_hex(8)

    async def run(self) -> None:
        while True:
            await self.sweep()
            await asyncio.sleep(self.interval_s)

    async def sweep(self) -> int:
        store, done = self.coordinator.store, 0
        for sid in await store.due(now_ms()):
            if not await store.claim_sweep(sid, self.owner, 30_000):
                continue
            journal = await store.load(sid)
            if journal is None or journal["status"] in (st.SETTLED, st.ABORTED, st.CANCELLED):
                await store.recovered(sid)
            elif journal["status"] == st.PENDING:
                await self.coordinator.abort(journal)
                log.warning("recovered: aborted", extra={"fields": {"settlement_id": sid}})
            elif journal["status"] == st.COMMITTING:
                await self.coordinator.finish(journal)
                log.warning("recovered: settled", extra={"fields": {"settlement_id": sid}})
            done += 1
        return done
