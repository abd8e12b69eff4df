"""FollowEntries (rule A10): a person's ledger read forward from a position, the entries that
payments made with whose payment each is, as a long poll that the settlement service's
WatchPayments stream asks again and again.

A position is the count of entries read (the ledger is append-only and numbered by the
account's `seq`), so a reader who resumes after position n gets the (n+1)-th entry next:
nothing lost, nothing twice. When the ledger ends at the position, the call waits for an entry
(services.account.followers) for at most MAX_WAIT_MS and never past its deadline, so the caller
always hears back, if only to ask again.
"""

from __future__ import annotations

from gongji.account.v1 import account_pb2 as pb
from services.account.base import Context, ServicerBase
from services.account.convert import entry_pb
from services.account.domain import Entry, PaidFor, payment_of
from services.common.errors import DomainError
from services.common.rpc import remaining

MAX_WAIT_MS = 20_000  # below the deadlines of the calls in between
DEFAULT_LIMIT, MAX_LIMIT = 100, 500


class FollowMethods(ServicerBase):
    async def FollowEntries(
        self, request: pb.FollowEntriesRequest, context: Context
    ) -> pb.FollowEntriesResponse:
        pid = self._pid(request.person_id)
        if not 0 <= request.wait_ms <= MAX_WAIT_MS:
            raise DomainError("INVALID_ARGUMENT", f"wait_ms must be 0..{MAX_WAIT_MS}")
        limit = request.limit or DEFAULT_LIMIT
        if not 0 < limit <= MAX_LIMIT:
            raise DomainError("INVALID_ARGUMENT", f"limit must be 0..{MAX_LIMIT}")
        end = await self.store.position(pid)
        if not request.HasField("after"):
            return pb.FollowEntriesResponse(position=end)
        after = request.after
        if not 0 <= after <= end:
            raise DomainError("INVALID_ARGUMENT", "after is not a position of this ledger")
        if after == end:
            wait_s = min(request.wait_ms / 1000, remaining(context, MAX_WAIT_MS / 1000))
            await self.followers.wait(pid, after, wait_s)
        read = await self.store.entries_after(pid, after, limit)
        paid = [(after + i, e) for i, e in enumerate(read, start=1) if payment_of(e)]
        found = await self.store.paid_for([payment_of(e) for _, e in paid])
        return pb.FollowEntriesResponse(
            entries=[_followed(n, e, found.get(payment_of(e))) for n, e in paid],
            position=after + len(read),
        )


def _followed(position: int, e: Entry, paid: PaidFor | None) -> pb.FollowedEntry:
    out = pb.FollowedEntry(position=position, entry=entry_pb(e), payment_id=payment_of(e))
    if paid is not None:  # a share made through the hold RPCs has no payment record
        out.payment_kind, out.patient_id = paid.kind, paid.patient_id  # type: ignore[assignment]
        out.details = paid.details.encode()
    return out
