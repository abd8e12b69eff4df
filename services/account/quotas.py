"""Aid quotas on the funder's account (rules N1-N5), for the binding service, which keeps the
relationship and its checks and calls these in its own order (services.binding.quotas).

A quota's record and its money live on its funder's account slot (`acct:{<funder>}:funds`, and
his `reserved`), so that opening it with its amount set aside, a raise or a cut, a draw, a refund
and its end with the release of what remains are each one script: there is never money set aside
for a quota that is not there, or a quota ACTIVE without its money. Each runs under the funder's
lock, as every change to what a payment may take from him does (grants.py): a payment planned
under that lock (Redis Cluster) is never overtaken by it.

And an institution's day and a month's clearing (N6, N7): the settlements listed there, read for
the settlement service. A day or month that is over is final: under Redis Cluster, where a
payment or cancel is written in steps, every one still marked from before its end is finished
first (Stepwise.flush), so nothing is added to it afterwards."""

from __future__ import annotations

import datetime as dt

import orjson

from gongji.account.v1 import account_pb2 as pb
from gongji.binding.v1 import binding_pb2 as bpb
from services.account.base import Context, ServicerBase
from services.account.convert import payment_pb, quota_pb
from services.account.domain import Payment
from services.account.store import beijing_day, clearing_key, day_key, records
from services.common import ids
from services.common.clock import ms_of
from services.common.enums import QuotaEndReason
from services.common.errors import DomainError
from services.common.rpc import remaining

_MAX_LIST_PAGE = 1000
_FLUSH_MARGIN_MS = 5_000  # clocks of the processes that mark payments, against Redis's
_DAY_MS = 24 * 3600 * 1000


class QuotaMethods(ServicerBase):
    async def OpenQuota(self, request: pb.OpenQuotaRequest, context: Context) -> bpb.Quota:
        funder = self._pid(request.funder_id, "funder_id")
        relative = self._pid(request.relative_id, "relative_id")
        quota_id = ids.token(request.quota_id, "quota_id")
        amount = ids.amount(request.amount_fen)
        if request.max_quotas <= 0 or request.seq <= 0 or not request.HasField("created_at"):
            raise DomainError("INVALID_ARGUMENT", "max_quotas, seq and created_at are required")
        async with self.locks.hold([funder], remaining(context)) as held:
            quota = await self.store.open_quota(
                funder, quota_id, relative, request.relationship, amount, request.max_quotas,
                request.pending, request.seq, ms_of(request.created_at), held.fences[funder],
            )  # fmt: skip
        return quota_pb(quota)

    async def ChangeQuotaAmount(
        self, request: pb.ChangeQuotaAmountRequest, context: Context
    ) -> bpb.Quota:
        funder = self._pid(request.funder_id, "funder_id")
        quota_id = ids.token(request.quota_id, "quota_id")
        amount = ids.amount(request.amount_fen, allow_zero=True)
        async with self.locks.hold([funder], remaining(context)) as held:
            quota = await self.store.change_quota(funder, quota_id, amount, held.fences[funder])
        return quota_pb(quota)

    async def CloseQuota(self, request: pb.CloseQuotaRequest, context: Context) -> bpb.Quota:
        funder = self._pid(request.funder_id, "funder_id")
        quota_id = ids.token(request.quota_id, "quota_id")
        reason = ids.enum_value(request.reason, set(QuotaEndReason), "reason")
        relative = self._pid(request.relative_id, "relative_id") if request.relative_id else ""
        created_ms = ms_of(request.created_at) if request.HasField("created_at") else 0
        async with self.locks.hold([funder], remaining(context)) as held:
            quota = await self.store.close_quota(
                funder, quota_id, reason, request.only_pending, relative, request.relationship,
                request.seq, created_ms, held.fences[funder],
            )  # fmt: skip
        return quota_pb(quota)

    async def ActivateQuota(self, request: pb.ActivateQuotaRequest, context: Context) -> bpb.Quota:
        funder = self._pid(request.funder_id, "funder_id")
        quota_id = ids.token(request.quota_id, "quota_id")
        async with self.locks.hold([funder], remaining(context)) as held:
            quota = await self.store.activate_quota(funder, quota_id, held.fences[funder])
        return quota_pb(quota)

    async def GetQuotas(
        self, request: pb.GetQuotasRequest, context: Context
    ) -> pb.GetQuotasResponse:
        refs = [
            (self._pid(r.funder_id, "quotas.funder_id"), ids.token(r.quota_id, "quotas.quota_id"))
            for r in request.quotas
        ]
        ids.items(refs, "quotas")
        found = await self.store.quotas(refs)
        return pb.GetQuotasResponse(quotas=[quota_pb(q) for q in found],
                                    seqs=[q.seq for q in found])  # fmt: skip

    # -- a day's and a month's settlements (N6, N7) ------------------------------------------
    async def ListDayPayments(
        self, request: pb.ListDayPaymentsRequest, context: Context
    ) -> pb.ListDayPaymentsResponse:
        institution = ids.institution_id(request.institution_id)
        day = ids.date(request.date, "date")
        start = _day_number(day)
        return await self._list(day_key(institution, day.isoformat()), start, start + 1,
                                request.offset, request.limit)  # fmt: skip

    async def ListClearingPayments(
        self, request: pb.ListClearingPaymentsRequest, context: Context
    ) -> pb.ListDayPaymentsResponse:
        first = ids.month(request.month, "month")
        after = (first.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
        return await self._list(clearing_key(request.month), _day_number(first),
                                _day_number(after), request.offset, request.limit)  # fmt: skip

    async def _list(
        self, key: str, first_day: int, end_day: int, offset: int, limit: int
    ) -> pb.ListDayPaymentsResponse:
        """A page of the list of the Beijing days [first_day, end_day): its settlements, those
        settled (`+`) and those cancelled (`-`) in it; final when it is over (Redis's clock)."""
        if offset < 0 or not 0 < limit <= _MAX_LIST_PAGE:
            raise DomainError("INVALID_ARGUMENT", f"offset >= 0, limit 1..{_MAX_LIST_PAGE}")
        now = await self.store.redis_ms()
        final = beijing_day(now) >= end_day
        if final and self.stepwise is not None:
            end_ms = end_day * _DAY_MS - 8 * 3600 * 1000
            await self.stepwise.flush(end_ms + _FLUSH_MARGIN_MS)
        members = await self.store.listed(key, offset, limit + 1)
        page = members[:limit]
        found = await records(self.store.redis, [m[1:] for m in page])
        settled: list[pb.Payment] = []
        cancelled: list[pb.Payment] = []
        for member in page:
            raw = found.get(member[1:])
            if not raw:
                raise DomainError("INTERNAL", "a listed settlement has no record")
            payment = payment_pb(Payment.from_script(orjson.loads(raw)))
            (settled if member[0] == "+" else cancelled).append(payment)
        return pb.ListDayPaymentsResponse(settled=settled, cancelled=cancelled, final=final,
                                          more=len(members) > limit)  # fmt: skip


def _day_number(day: dt.date) -> int:
    return (day - dt.date(1970, 1, 1)).days
