"""Consent (rule B14): a binding a citizen makes for an adult relative waits for the relative.

Until he confirms it (ConfirmBinding) it is PENDING_CONSENT: it holds the binder's pair and counts
toward his limit (B4, B7), it is in the relative's history and `awaiting` view, and it is on no
payer list; the account service has no grant and no order entry for it, so it pays nothing. He
declines with RemoveBinding. Not confirmed within 7 days, it lapses: its time is a mark in its
province's `consent-due` index (services.common.intents), whose sweep ends every binding whose
time has passed, with no caller needed; a confirmation arriving after that time lapses it
instead of confirming it.

Confirming follows lifecycle.create's order: the grant is written first, then one script makes
the binding ACTIVE and puts it last on the payer list, then the new order is pushed. A binding
that ended in between keeps its end (its grant was revoked, and a revoked grant stays revoked).
Its scripts are lua/confirm.lua and lua/confirm_binder_side.lua; the keys are store.Keys'.
"""

from __future__ import annotations

import dataclasses
import logging

from services.binding.domain import CONSENT_DAYS, Binding
from services.binding.lifecycle import BACKGROUND_TIMEOUT_S, Lifecycle
from services.binding.store import BindingStore, Keys, provinces_of, script
from services.common.clock import Clock, now_ms
from services.common.enums import BindingStatus
from services.common.errors import DomainError
from services.common.ids import PROVINCES
from services.common.intents import Finish, Intents

log = logging.getLogger(__name__)
CONSENT_MS = CONSENT_DAYS * 24 * 3600 * 1000


class Consent:
    def __init__(self, store: BindingStore, lifecycle: Lifecycle, clock: Clock) -> None:
        self.store, self.lifecycle, self.clock = store, lifecycle, clock
        self.quota_lapse: Finish | None = None  # set by services.binding.quotas
        self._confirm = store.redis.register_script(script("confirm"))
        self._confirm_binder_side = store.redis.register_script(script("confirm_binder_side"))
        # A pending binding's mark: scored by when it lapses, due from then on.
        self.due = Intents(
            store.redis, [Keys.consent_due(f"{p:02d}") for p in sorted(PROVINCES)], self._lapse,
            label="binding-lapsed-unconfirmed", due_after_ms=0, now=self.now_ms,
        )  # fmt: skip

    def now_ms(self) -> int:
        return now_ms(self.clock)

    async def confirm(self, binding_id: str, timeout_s: float) -> Binding:
        """The relative's yes: ACTIVE and a payer from now on. Anything but a binding awaiting
        consent is returned as it is; one whose time has passed lapses now."""
        found = await self.store.get(binding_id)
        if found is None:
            raise DomainError("BINDING_NOT_FOUND", "no such binding")
        if found.status != BindingStatus.PENDING_CONSENT:
            return found
        await self.lifecycle.accounts.grant(
            found.binder_id, found.beneficiary_id, binding_id, found.start_date, found.end_date,
            timeout_s,
        )  # fmt: skip
        outcome = await self._activate(found)
        if outcome == "overdue":
            await self.lifecycle.end(binding_id, BindingStatus.LAPSED, self.now_ms(), timeout_s,
                                     only_pending=True)  # fmt: skip
        elif outcome != "gone":  # made ACTIVE now, or meanwhile by another call
            await self.lifecycle.push_order(found.beneficiary_id, timeout_s)
        after = await self.store.get(binding_id)
        if after is None:
            raise DomainError("BINDING_NOT_FOUND", "no such binding")
        return after

    async def _activate(self, b: Binding) -> str:
        """One script: 'gone', 'unchanged', 'overdue', or its priority when made ACTIVE."""
        pb_, pe = provinces_of(b.binding_id)
        now = self.now_ms()
        if pb_ != pe:
            keys = [Keys.record(b.binding_id), Keys.consent_due(pb_), Keys.views_due(pb_)]
            outcome = str(await self._confirm_binder_side(keys=keys, args=[b.binding_id, now]))
            if outcome == "0":
                active = dataclasses.replace(b, status=BindingStatus.ACTIVE)
                outcome = str(await self.store.finish_across(active))
            return outcome
        keys = [
            Keys.record(b.binding_id), Keys.person(pe, b.beneficiary_id), Keys.order_outbox(pe),
            Keys.consent_due(pb_),
        ]  # fmt: skip
        args: list[str | int] = [b.binding_id, now, b.created_ms, b.beneficiary_id]
        return str(await self._confirm(keys=keys, args=args))

    async def _lapse(self, bucket: str, binding_id: str) -> None:
        """A binding whose time to be confirmed has passed, lapsed (its end takes it off the
        index in its script; an entry whose binding no longer awaits consent, off too). An aid
        quota's mark (its id begins with Q) goes to services.binding.quotas."""
        if binding_id.startswith("Q") and self.quota_lapse is not None:
            await self.quota_lapse(bucket, binding_id)
            return
        await self.lifecycle.end(binding_id, BindingStatus.LAPSED, self.now_ms(),
                                 BACKGROUND_TIMEOUT_S, only_pending=True)  # fmt: skip
        await self.due.clear(binding_id, bucket)
        log.info("binding lapsed unconfirmed", extra={"fields": {"binding_id": binding_id}})

    async def sweep(self) -> None:
        """Lapse what was not confirmed in time, in every province, for ever."""
        await self.due.run()


def lapses_ms(created_ms: int) -> int:
    """When a binding made at `created_ms` lapses if not confirmed (B14)."""
    return created_ms + CONSENT_MS
