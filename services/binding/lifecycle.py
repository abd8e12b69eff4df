"""A binding, its family-aid grant and its beneficiary's payer order move together.

The account service pays a relative's bill from a binder's account only under a grant for that
binding, checked in the same script as the debit (rule S4), and in the order the binding service
last gave it (SetFamilyAidOrder, B10). So:
- the grant is written before the binding exists, and revoked after the binding ends and before
  the end is acknowledged: once RemoveBinding has answered, no payment takes the binder's money
  for that relative (B11). A crash between two steps leaves at most a grant without an ACTIVE
  binding, which pays nothing: it is never in the order. The script that ends a binding also
  marks its grant to be revoked (`revokes-due`); the mark is taken off once the grant is
  revoked, and its sweep revokes whatever a cut-off end left (a removal, a lapse, a consent
  running out: whoever ended it);
- a grant is marked (an intent, services.common.intents) before it is written, and the mark
  is taken off once its binding is made. A mark left longer than a call lasts is a creation
  cut off or given up: its sweep marks the binding id void (no late attempt makes it then) and
  revokes the grant, so no grant stands for a binding that does not exist;
- every change of a payer list bumps its version and marks it in the store's order outbox in the
  same script; the new order is pushed before the change is acknowledged, and the sweep of those
  marks (services.common.intents) pushes whatever a crash or an unreachable account service left
  marked. The account service keeps the highest version it was given, so pushes arriving late or
  twice do no harm.
"""

from __future__ import annotations

import asyncio
import logging

from services.account.client import AccountClient
from services.binding.domain import Binding
from services.binding.store import BindingStore, Keys, provinces_of
from services.common.enums import BindingStatus
from services.common.errors import DomainError
from services.common.ids import PROVINCES
from services.common.intents import Finish, Intents

log = logging.getLogger(__name__)
BACKGROUND_TIMEOUT_S = 5.0  # no caller waits on the relay or a lapse
VIEWS_DUE_AFTER_MS = 10_000  # longer than a call that is still finishing its own steps
GRANT_BUCKETS = 16  # the index of grants being written, spread over this many slots


_PROVINCES = [f"{p:02d}" for p in sorted(PROVINCES)]


class Lifecycle:
    def __init__(
        self, store: BindingStore, accounts: AccountClient,
        views_due_after_ms: int = VIEWS_DUE_AFTER_MS,
    ) -> None:  # fmt: skip
        self.store, self.accounts = store, accounts
        # An aid quota's mark in `views-due` (its id begins with Q): services.binding.quotas
        # finishes it, and sets this when it is built.
        self.quota_finish: Finish | None = None
        # A payer list marked in its province's order outbox (score: its version), and a
        # binding across provinces marked in its binder's province until its beneficiary's side
        # is written (score: the time of the mark).
        self.orders = Intents(
            store.redis, [Keys.order_outbox(p) for p in _PROVINCES], self._push_marked,
            label="payer-order-pushed", pending_label="payer-orders",
        )  # fmt: skip
        self.views = Intents(
            store.redis, [Keys.views_due(p) for p in _PROVINCES], self._finish_marked,
            label="binding-view-finished", due_after_ms=views_due_after_ms,
        )  # fmt: skip
        # A grant being written for a binding being made (`<binding id> <binder>`).
        self.grants = Intents(
            store.redis, [Keys.grants_due(n) for n in range(GRANT_BUCKETS)], self._void_marked,
            label="binding-grant-voided", due_after_ms=views_due_after_ms,
        )  # fmt: skip
        # A binding ended, its grant still to be revoked (marked by the script that ended it).
        self.revokes = Intents(
            store.redis, [Keys.revokes_due(p) for p in _PROVINCES], self._revoke_marked,
            label="binding-grant-revoked", due_after_ms=views_due_after_ms,
        )  # fmt: skip

    async def create(
        self, b: Binding, limit: int, fp: str, marker: str, timeout_s: float, lapses_ms: int = 0
    ) -> Binding:
        """Make the binding. One awaiting consent (`lapses_ms`: when it lapses unconfirmed,
        B14) gets no grant and changes no payer order: services.binding.consent does both when
        the relative confirms it."""
        if b.status == BindingStatus.PENDING_CONSENT:
            return await self.store.create(b, limit, fp, marker, lapses_ms)
        granting = f"{b.binding_id} {b.binder_id}"
        await self.grants.mark(granting)
        await self.accounts.grant(
            b.binder_id, b.beneficiary_id, b.binding_id, b.start_date, b.end_date, timeout_s
        )
        try:
            made = await self.store.create(b, limit, fp, marker)
        except DomainError:  # refused: its grant revoked now, or by the sweep of its mark
            await asyncio.shield(self._revoke_quietly(b.binder_id, b.binding_id))
            raise
        if made.binding_id != b.binding_id:  # made by an attempt of this request cut off
            await asyncio.shield(self._revoke_quietly(b.binder_id, b.binding_id))
        else:
            await self.grants.clear(granting)
        await self.push_order(b.beneficiary_id, timeout_s)
        return made

    async def end(
        self, binding_id: str, status: int, ended_ms: int, timeout_s: float,
        only_pending: bool = False,
    ) -> Binding | None:  # fmt: skip
        """End the binding (unchanged if it has ended already; only if it awaits consent when
        `only_pending`), then revoke its grant: one awaiting consent has none, unless a
        confirmation was cut off after writing it (the revocation is kept, so that none is
        written late). Cut off in between, the end's mark has the sweep revoke it."""
        ended = await self.store.end(
            binding_id, status, ended_ms, only_pending, marked_ms=self.revokes.now()
        )
        if ended is not None:
            await self._revoke(ended, timeout_s)
            await self.push_order(ended.beneficiary_id, timeout_s)
        return ended

    async def _revoke(self, b: Binding, timeout_s: float) -> None:
        """An ended binding's grant revoked, then its mark off."""
        await self.accounts.revoke(b.binder_id, b.binding_id, timeout_s)
        await self.revokes.clear(b.binding_id, Keys.revokes_due(provinces_of(b.binding_id)[0]))

    async def _revoke_marked(self, bucket: str, binding_id: str) -> None:
        """A binding whose end was cut off before its grant was revoked: revoked now."""
        found = await self.store.get(binding_id)
        if found is None or found.status in (BindingStatus.ACTIVE, BindingStatus.PENDING_CONSENT):
            await self.revokes.clear(binding_id, bucket)  # (no mark is made for those)
            return
        await self._revoke(found, BACKGROUND_TIMEOUT_S)

    async def push_order(self, beneficiary: str, timeout_s: float) -> None:
        """The beneficiary's payers, in order, and his ACTIVE aid quotas, oldest first (N3), to
        the account service; then off the outbox."""
        payers, versions, quotas = await self.store.order_of(beneficiary)
        if not sum(versions.values()):  # his payer list never changed (B14: pending only)
            return
        listed = [(p.binder_id, p.binding_id) for p in payers]
        await self.accounts.set_order(beneficiary, listed, sum(versions.values()), timeout_s,
                                      quotas)  # fmt: skip
        for province, version in versions.items():  # off, unless marked again since
            await self.orders.clear(beneficiary, Keys.order_outbox(province), upto=version)

    async def _push_marked(self, bucket: str, beneficiary: str) -> None:
        await self.push_order(beneficiary, BACKGROUND_TIMEOUT_S)

    async def _finish_marked(self, bucket: str, binding_id: str) -> None:
        """A binding across provinces marked longer ago than a call lasts: its beneficiary's
        side as its record is now (BindingStore.finish_across), which takes the mark off. (An
        aid quota's mark goes to services.binding.quotas.)"""
        if binding_id.startswith("Q") and self.quota_finish is not None:
            await self.quota_finish(bucket, binding_id)
            return
        found = await self.store.get(binding_id)
        if found is None:
            await self.views.clear(binding_id, bucket)
        else:
            await self.store.finish_across(found)

    async def _void_marked(self, bucket: str, granting: str) -> None:
        """A grant written for a binding whose creation was cut off or given up: the binding
        id made void (unless the binding was made after all), then its grant revoked."""
        binding_id, binder = granting.split(" ", 1)
        if await self.store.void(binding_id):
            await self.accounts.revoke(binder, binding_id, BACKGROUND_TIMEOUT_S)
        await self.grants.clear(granting, bucket)

    async def relay(self) -> None:
        """The four sweeps, for ever."""
        await asyncio.gather(
            self.orders.run(), self.views.run(), self.grants.run(), self.revokes.run()
        )

    async def _revoke_quietly(self, binder: str, binding_id: str) -> None:
        """A grant whose binding was refused: revoke it if we can; if not, it pays nothing."""
        try:
            await self.accounts.revoke(binder, binding_id, BACKGROUND_TIMEOUT_S)
        except Exception:
            log.warning(
                "grant of a refused binding left", extra={"fields": {"binding_id": binding_id}}
            )
