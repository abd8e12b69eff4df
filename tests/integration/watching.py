"""Shortcuts for watch tests (rule A10): open a WatchPayments stream once its start is fixed,
read its events with a bound on every read, and the ledger entries a watch must show."""

from __future__ import annotations

import asyncio
from typing import Any

from gongji.account.v1 import account_pb2 as pb
from gongji.settlement.v1 import settlement_pb2 as spb
from tests.integration.accounts import all_entries

READ_S = 10.0  # no read of a stream waits longer than this

WATCHED_KINDS = {pb.ENTRY_KIND_SETTLEMENT, pb.ENTRY_KIND_REFUND, pb.ENTRY_KIND_PREMIUM}


async def watch(settlement: Any, person: str, cursor: str = "") -> Any:
    """A stream whose start is fixed: the server sends its headers once it knows where the
    stream begins, so what happens after this returns is in the stream."""
    call = settlement.WatchPayments(spb.WatchPaymentsRequest(person_id=person, cursor=cursor))
    await asyncio.wait_for(call.initial_metadata(), READ_S)
    return call


async def events(call: Any, n: int) -> list[spb.PaymentEvent]:
    return [await asyncio.wait_for(call.read(), READ_S) for _ in range(n)]


async def watched_entries(account: Any, person: str) -> list[pb.LedgerEntry]:
    """The person's ledger, oldest first, without what a watch never shows (credits,
    commercial insurance, closures). Its refunds are all a watch's where no commercial policy
    was cancelled."""
    return [e for e in reversed(await all_entries(account, person)) if e.kind in WATCHED_KINDS]
