"""A binding, its family-aid grant and its beneficiary's payer order move together.

The account service pays a relative's bill from a binder's account only under a grant for that
binding, checked in the same script as the debit (rule S4), and in the order the binding service
last gave it (SetFamilyAidOrder, B10). So:
- the grant is written before the binding exists, and revoked after the binding ends and before
  the end is acknowledged: once RemoveBinding has answered, no payment takes the binder's money
  for that relative (B11). A crash between two steps leaves at most a grant without an ACTIVE
  binding, which pays nothing: it is never in the order, and a retry revokes it;
- every change of a payer list bumps its version and marks it in the store's order outbox in the
  same script; the new order is pushed before the change is acknowledged, and the relay loop
  pushes whatever a crash or an unreachable account service left marked. The account service
  keeps the highest version it was given, so pushes arriving late or twice do no harm.
"""

from __future__ import annotations

import asyncio
import logging
import time

from services.account.client import AccountClient
from services.binding.domain import Binding
from services.binding.store import BindingStore
from services.common import metrics
from services.common.enums import BindingStatus
from services.common.errors import DomainError
from services.common.ids import PROVINCES

log = logging.getLogger(__name__)
BACKGROUND_TIMEOUT_S = 5.0  # no caller waits on the relay or a lapse
VIEWS_DUE_AFTER_MS = 10_000  # longer than a call that is still finishing its own steps


class Lifecycle:
    def __init__(self, store: BindingStore, accounts: AccountClient) -> None:
        self.store, self.accounts = store, accounts

    async def create(
        self, b: Binding, limit: int, fp: str, marker: str, timeout_s: float, lapses_ms: int = 0
    ) -> Binding:
        """Make the binding. One awaiting consent (`lapses_ms`: when it lapses unconfirmed,
        B14) gets no grant and changes no payer order: services.binding.consent does both when
        the relative confirms it."""
        if b.status == BindingStatus.PENDING_CONSENT:
            return await self.store.create(b, limit, fp, marker, lapses_ms)
        await self.accounts.grant(
            b.binder_id, b.beneficiary_id, b.binding_id, b.start_date, b.end_date, timeout_s
        )
        try:
            made = await self.store.create(b, limit, fp, marker)
        except DomainError:
            await asyncio.shield(self._revoke_quietly(b.binder_id, b.binding_id))
            raise
        await self.push_order(b.beneficiary_id, timeout_s)
        return made

    async def end(
        self, binding_id: str, status: int, ended_ms: int, timeout_s: float,
        only_pending: bool = False,
    ) -> Binding | None:  # fmt: skip
        """End the binding (unchanged if it has ended already; only if it awaits consent when
        `only_pending`), then revoke its grant: one awaiting consent has none, unless a
        confirmation was cut off after writing it."""
        ended = await self.store.end(binding_id, status, ended_ms, only_pending)
        if ended is not None:
            await self.accounts.revoke(ended.binder_id, binding_id, timeout_s)
            await self.push_order(ended.beneficiary_id, timeout_s)
        return ended

    async def push_order(self, beneficiary: str, timeout_s: float) -> None:
        """The beneficiary's payers, in order, to the account service; then off the outbox."""
        payers, versions = await self.store.order_of(beneficiary)
        if not sum(versions.values()):  # his payer list never changed (B14: pending only)
            return
        listed = [(p.binder_id, p.binding_id) for p in payers]
        await self.accounts.set_order(beneficiary, listed, sum(versions.values()), timeout_s)
        await self.store.order_pushed(beneficiary, versions)

    async def relay(self, interval_s: float = 1.0) -> None:
        """Push every order still marked in any province's outbox, and finish the beneficiary's
        side of every binding across provinces a crash left due; then wait; for ever."""
        while True:
            pending = 0
            for province in sorted(PROVINCES):
                await self.finish_views(f"{province:02d}")
                for beneficiary in await self.store.orders_pending(f"{province:02d}"):
                    pending += 1
                    try:
                        await self.push_order(beneficiary, BACKGROUND_TIMEOUT_S)
                        metrics.RELAYED_LATE.labels("payer-order-pushed").inc()
                    except Exception:
                        log.warning("payer order push deferred", exc_info=True)
            metrics.OUTBOX_PENDING.labels("payer-orders").set(pending)
            await asyncio.sleep(interval_s)

    async def finish_views(self, province: str, after_ms: int = VIEWS_DUE_AFTER_MS) -> None:
        """Bindings across provinces marked longer ago than a call lasts (`after_ms`): their
        beneficiary's side as their record is now (BindingStore.finish_across)."""
        due = int(time.time() * 1000) - after_ms
        for binding_id in await self.store.views_due(province, due):
            try:
                found = await self.store.get(binding_id)
                if found is not None:
                    await self.store.finish_across(found)
                    metrics.RELAYED_LATE.labels("binding-view-finished").inc()
            except Exception:
                log.warning("binding view deferred", exc_info=True)

    async def _revoke_quietly(self, binder: str, binding_id: str) -> None:
        """A grant whose binding was refused: revoke it if we can; if not, it pays nothing."""
        try:
            await self.accounts.revoke(binder, binding_id, BACKGROUND_TIMEOUT_S)
        except Exception:
            log.warning(
                "grant of a refused binding left", extra={"fields": {"binding_id": binding_id}}
            )
