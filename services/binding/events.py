"""Lapsing (rule B12): the account-event stream, consumed with a Redis consumer group.

When an account closes (CLOSED: death, emigration, withdrawal; TRANSFERRED_OUT: moved to another
province) every ACTIVE binding on either side lapses (LAPSED, kept in history); when an employee
becomes resident-insured (TYPE_CHANGED), his bindings as binder lapse: a resident is never a
binder (B1, A9). The group
`binding` remembers what was acknowledged, so a restarted service resumes where it stopped;
events a dead consumer read but never acknowledged are claimed after a minute. Lapsing is
idempotent and each event id is remembered, so an event delivered twice changes nothing twice;
an event lapses only the bindings made before it, so one delivered late (claimed from a dead
consumer) ends nothing made after the account re-opened or became an employee's again.

Aid quotas (N4) follow the same events: the relative's stop, withdrawal (CLOSED) or move (a
change of region, or TRANSFERRED_OUT) ends the quotas granted to him before it; the funder's own
stop, withdrawal, move or change to resident ended his in its script, and his relatives' sides
follow here (services.binding.quotas).
"""

from __future__ import annotations

import logging
import os
import socket
from typing import Any, cast

import redis.asyncio as aioredis
import redis.exceptions

from services.binding.lifecycle import BACKGROUND_TIMEOUT_S, Lifecycle
from services.binding.quotas import Quotas
from services.binding.store import BindingStore
from services.common.account_events import CLOSING
from services.common.account_events import STREAM as EVENTS_STREAM
from services.common.clock import Clock, now_ms
from services.common.enums import BindingStatus, InsuranceType

log = logging.getLogger(__name__)

GROUP = "binding"
CLAIM_IDLE_MS = 60_000


class Lapser:
    def __init__(
        self, redis: aioredis.Redis, store: BindingStore, lifecycle: Lifecycle, quotas: Quotas,
        clock: Clock, block_ms: int | None = 1000,
    ) -> None:  # fmt: skip
        """`clock`: the service's (a lapse's end time); `block_ms`: how long a step waits for
        new events (None: not at all)."""
        self.redis, self.store, self.lifecycle, self.block_ms = redis, store, lifecycle, block_ms
        self.quotas, self.clock = quotas, clock
        self.consumer = f"{socket.gethostname()}-{os.getpid()}"

    async def ensure_group(self) -> None:
        try:
            await self.redis.xgroup_create(EVENTS_STREAM, GROUP, id="0", mkstream=True)
        except redis.exceptions.ResponseError as e:
            if "BUSYGROUP" not in str(e):
                raise

    async def run(self) -> None:
        await self.ensure_group()
        while True:
            await self.step()

    async def step(self) -> int:
        """Handle one batch: abandoned events first, then new ones. Returns how many."""
        claimed = await self.redis.xautoclaim(
            EVENTS_STREAM, GROUP, self.consumer, CLAIM_IDLE_MS, "0-0", count=100
        )
        batch = list(claimed[1])
        if not batch:
            read = await self.redis.xreadgroup(
                GROUP, self.consumer, {EVENTS_STREAM: ">"}, count=100, block=self.block_ms
            )
            streams = cast(list[tuple[str, list[Any]]], read)
            batch = [item for _, items in streams for item in items]
        for entry_id, fields in cast(list[tuple[str, dict[str, Any]]], batch):
            await self.apply(fields)
            await self.redis.xack(EVENTS_STREAM, GROUP, entry_id)
        return len(batch)

    async def apply(self, event: dict[str, Any]) -> None:
        sides = _lapsing(event)
        quota_end = _QUOTA_ENDS.get(event.get("type", ""))
        if not sides and quota_end is None and not _funder_quotas_end(event):
            return
        if await self.store.seen(event["event_id"]):
            return
        pid = event["person_id"]
        now = now_ms(self.clock)
        at_ms = int(event.get("at_ms") or now)
        for as_binder in sides:
            # (a pass cut off after ending a binding and before revoking its grant left the
            # grant marked: Lifecycle.revokes finishes it)
            for b in await self.store.bindings_of(pid, as_binder, include_inactive=False):
                if b.created_ms > at_ms:  # made after the change (a re-opened account's)
                    continue
                await self.lifecycle.end(
                    b.binding_id, BindingStatus.LAPSED, now, BACKGROUND_TIMEOUT_S
                )
                log.info("binding lapsed", extra={"fields": {"binding_id": b.binding_id}})
        if quota_end is not None:
            await self.quotas.relative_changed(pid, at_ms, moved=quota_end)
        if quota_end is not None or _funder_quotas_end(event):
            await self.quotas.funder_changed(pid)
        await self.store.remember(event["event_id"])


# The events that end the quotas granted to their person (N4): whether as MOVED.
_QUOTA_ENDS = {"STOPPED": False, "CLOSED": False, "TRANSFERRED_OUT": True,
               "REGION_CHANGED": True}  # fmt: skip


def _funder_quotas_end(event: dict[str, Any]) -> bool:
    """A change to resident ends his quotas as funder (none as relative: N4)."""
    return event.get("type") == "TYPE_CHANGED" and event.get("insurance_type") == str(
        int(InsuranceType.RESIDENT)
    )


def _lapsing(event: dict[str, Any]) -> tuple[bool, ...]:
    """The sides (as binder?) on which the event's person loses his ACTIVE bindings."""
    if event.get("type") in CLOSING:
        return (True, False)
    if event.get("type") == "TYPE_CHANGED" and event.get("insurance_type") == str(
        int(InsuranceType.RESIDENT)
    ):
        return (True,)
    return ()
