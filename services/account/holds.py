"""PlaceHolds, CommitHolds, VoidHolds and RefundEntries: the only ways settlement money moves.

Each hold or refund is one script on its own account (one shard under Redis Cluster) and is
idempotent on its own id. "All or none" for PlaceHolds is kept account by account: when one
hold is refused, the holds this call placed are taken back before the error returns, so the
refused request changed nothing and may be retried as it is.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from gongji.account.v1 import account_pb2 as pb
from services.account import domain
from services.account.base import Context, ServicerBase
from services.account.convert import entry_pb, hold_pb
from services.common import ids, metrics
from services.common.enums import HoldState
from services.common.errors import DomainError

HOLD_ID_MAX = 128
# Fencing tokens are compared as Lua numbers (doubles): beyond 2^53 two tokens could look equal.
MAX_FENCING_TOKEN = 2**53 - 1


class HoldMethods(ServicerBase):
    def _hold_ref(self, hold_id: str, person_id: str) -> tuple[str, str]:
        return ids.token(hold_id, "hold_id", HOLD_ID_MAX), self._pid(person_id)

    def _distinct(self, keys: list[str], field: str) -> None:
        if len(set(keys)) != len(keys):
            raise DomainError("INVALID_ARGUMENT", f"{field} repeats an id")

    async def PlaceHolds(
        self, request: pb.PlaceHoldsRequest, context: Context
    ) -> pb.PlaceHoldsResponse:
        ids.items(list(request.holds), "holds")
        kind = ids.enum_value(request.kind, domain.HOLD_KINDS, "kind")
        reference = ids.text(request.reference, "reference", required=False)
        specs = []
        for h in request.holds:
            hold_id, pid = self._hold_ref(h.hold_id, h.person_id)
            amount = ids.amount(h.amount_fen, "holds.amount_fen")
            if not 0 < h.fencing_token <= MAX_FENCING_TOKEN:
                raise DomainError(
                    "INVALID_ARGUMENT", f"holds.fencing_token must be 1..{MAX_FENCING_TOKEN}"
                )
            specs.append((pid, hold_id, amount, h.fencing_token))
        self._distinct([s[1] for s in specs], "holds")

        async def run(fp: str, marker: str) -> pb.PlaceHoldsResponse:
            placed: list[domain.Hold] = []
            try:
                for pid, hold_id, amount, fence in specs:
                    placed.append(
                        await self.store.place_hold(pid, hold_id, amount, fence, kind, reference)
                    )
            except BaseException:
                await asyncio.shield(self._take_back([h for h in placed if h.placed_now]))
                raise
            metrics.HOLDS.labels("placed").inc(sum(1 for h in placed if h.placed_now))
            return pb.PlaceHoldsResponse(holds=[hold_pb(h) for h in placed])

        return await self.requests.once("PlaceHolds", request, pb.PlaceHoldsResponse, run, context)

    async def _take_back(self, holds: list[domain.Hold]) -> None:
        for h in holds:
            await self.store.unplace_hold(h.person_id, h.hold_id)

    async def CommitHolds(
        self, request: pb.CommitHoldsRequest, context: Context
    ) -> pb.CommitHoldsResponse:
        refs = self._refs(request.holds)

        async def run(fp: str, marker: str) -> pb.CommitHoldsResponse:
            entries = [await self.store.commit_hold(pid, hold_id) for hold_id, pid in refs]
            metrics.HOLDS.labels("committed").inc(len(entries))
            return pb.CommitHoldsResponse(entries=[entry_pb(e) for e in entries])

        return await self.requests.once(
            "CommitHolds", request, pb.CommitHoldsResponse, run, context
        )

    async def VoidHolds(
        self, request: pb.VoidHoldsRequest, context: Context
    ) -> pb.VoidHoldsResponse:
        refs = self._refs(request.holds)

        async def run(fp: str, marker: str) -> pb.VoidHoldsResponse:
            holds = [await self.store.void_hold(pid, hold_id) for hold_id, pid in refs]
            expired = sum(1 for h in holds if h.state == HoldState.EXPIRED)
            metrics.HOLDS.labels("voided").inc(len(holds) - expired)
            metrics.HOLDS.labels("found_expired").inc(expired)
            return pb.VoidHoldsResponse(holds=[hold_pb(h) for h in holds])

        return await self.requests.once("VoidHolds", request, pb.VoidHoldsResponse, run, context)

    def _refs(self, holds: Sequence[pb.HoldRef]) -> list[tuple[str, str]]:
        items = list(holds)
        ids.items(items, "holds")
        refs = [self._hold_ref(h.hold_id, h.person_id) for h in items]
        self._distinct([r[0] for r in refs], "holds")
        return refs

    async def RefundEntries(
        self, request: pb.RefundEntriesRequest, context: Context
    ) -> pb.RefundEntriesResponse:
        ids.items(list(request.refunds), "refunds")
        reference = ids.text(request.reference, "reference", required=False)
        specs = [
            (
                self._pid(r.person_id),
                ids.token(r.entry_id, "refunds.entry_id"),
                ids.token(r.refund_id, "refunds.refund_id", HOLD_ID_MAX),
            )
            for r in request.refunds
        ]
        self._distinct([s[1] for s in specs], "refunds")

        async def run(fp: str, marker: str) -> pb.RefundEntriesResponse:
            entries = [
                await self.store.refund(pid, refund_id, entry_id, reference)
                for pid, entry_id, refund_id in specs
            ]
            return pb.RefundEntriesResponse(entries=[entry_pb(e) for e in entries])

        return await self.requests.once(
            "RefundEntries", request, pb.RefundEntriesResponse, run, context
        )
