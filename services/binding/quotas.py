"""Aid quotas across provinces (rules N1-N5, B14): the binding service keeps the relationship and
its checks, the funder's account keeps the money.

A quota's money state and status live on its funder's account slot (services.account.quotas):
opening it with its amount set aside, a change, a draw, a refund and its end with the release
of what remains are each one script there, so money is never set aside for a quota that is not
there, nor the other way round. The binding service keeps, under the funder's province, the
quota's record (who granted whom, as what, in which grant order: `Keys.quota`), found from the
quota id alone (it names both provinces), and each person's views (store.Keys.person): `fq:` the
quotas he funds, `rq:` those granted to him (with the furthest state his side has seen), `g:`
his ACTIVE ones, which reach his account with his payer order (lifecycle.push_order), so that a
bill of his draws on them, oldest first, before his payers (N3).

A grant: the record, marked in the funder's province's `views-due` (one script; the province's
one index of work still due across provinces, swept by lifecycle.py); the quota opened on the
funder's account (refused: the record and the mark removed, nothing else was written); both
people's views as the account now says, the relative's order pushed, the mark off. An end or
a confirmation marks, changes the account, writes the relative's side, clears. The sweep of the
marks (services.common.intents) finishes whatever a crash left: it writes the relative's side
from the account's record, or, for a quota the account never opened, records it ENDED there
first (a late OpenQuota then finds it ended), so no mark is left without something that finishes
it, and nothing a caller was told is undone. The relative's side only moves forward (pending ->
ACTIVE -> ENDED), so a late write of an older state changes nothing.

A quota awaiting consent (B14) is also marked in its funder's province's `consent-due`, like a
binding awaiting consent, with the time it lapses; that sweep (consent.py) ends it NOT_CONFIRMED
(only while it is still pending).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence

import grpc
import orjson

from gongji.account.v1 import account_pb2 as apb
from gongji.binding.v1 import binding_pb2 as pb
from services.account.client import AccountClient
from services.binding.consent import Consent
from services.binding.domain import QuotaLink, Views
from services.binding.lifecycle import BACKGROUND_TIMEOUT_S, Lifecycle
from services.binding.store import BindingStore, Keys, quota_provinces, script
from services.common.clock import Clock, now_ms, timestamp
from services.common.enums import QuotaEndReason, QuotaStatus
from services.common.errors import DomainError
from services.common.redisdb import get_many
from services.common.rpc import reason_of

log = logging.getLogger(__name__)

QUOTA_SEQ = "bind:quota-seq"  # grant order, one counter for the country
CONSENT_MS = 7 * 24 * 3600 * 1000
# The answers of a script that refused (and so wrote nothing), as they reach a peer.
# (ABORTED: LOCK_TIMEOUT, the funder's lock not had, or lost before the script wrote anything.)
_REFUSALS = frozenset(
    {
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.ALREADY_EXISTS,
        grpc.StatusCode.ABORTED,
    }
)
# How far the relative's side has seen a quota (it only moves forward).
_SIDE_STATE = {QuotaStatus.PENDING_CONSENT: 0, QuotaStatus.ACTIVE: 1, QuotaStatus.ENDED: 2}


def new_quota_id(funder_province: str, relative_province: str, marker: str) -> str:
    """From the request (a retry of it names the same quota), with both provinces in it."""
    digest = hashlib.sha256(f"quota/{marker}".encode()).hexdigest()[:16]
    return f"Q{funder_province}{relative_province}{digest}"


class Quotas:
    """The quota steps; their marks are swept with the province's other marks: those of work
    across provinces by `lifecycle.views`, those of consent by `consent.due`, each handing a
    quota's mark (its id begins with Q) to this class."""

    def __init__(
        self, store: BindingStore, accounts: AccountClient, lifecycle: Lifecycle,
        consent: Consent, clock: Clock,
    ) -> None:  # fmt: skip
        self.store, self.accounts, self.lifecycle, self.clock = store, accounts, lifecycle, clock
        redis = store.redis
        self._begin = redis.register_script(script("quota_begin", head=False))
        self._forget = redis.register_script(script("quota_forget", head=False))
        self._side = redis.register_script(script("quota_side"))
        self.due, self.lapsing = lifecycle.views, consent.due
        lifecycle.quota_finish = self._finish_marked
        consent.quota_lapse = self._lapse

    def now_ms(self) -> int:
        return now_ms(self.clock)

    # -- the RPCs' work ----------------------------------------------------------------------
    async def grant(
        self, quota_id: str, funder: str, relative: str, relationship: int, amount: int,
        pending: bool, max_quotas: int, timeout_s: float,
    ) -> pb.Quota:  # fmt: skip
        """N1, N2: the record and the funder's view (marked), the quota opened on his account,
        the relative's side. A retry of the same request (the same quota id) keeps the first
        one's grant sequence and time."""
        seq = int(await self.store.redis.incr(QUOTA_SEQ))
        link = QuotaLink(quota_id, funder, relative, relationship, seq, self.now_ms())
        now = self.now_ms()
        lapses = link.created_ms + CONSENT_MS if pending else 0
        record = orjson.dumps(link.record()).decode()
        args: list[str | int] = [link.quota_id, record, now, lapses]
        kept = await self._begin(keys=self._keys(link), args=args)
        link = QuotaLink.from_record(link.quota_id, orjson.loads(kept))
        request = apb.OpenQuotaRequest(
            quota_id=link.quota_id, funder_id=link.funder_id, relative_id=link.relative_id,
            relationship=link.relationship,  # type: ignore[arg-type]
            amount_fen=amount, max_quotas=max_quotas, pending=pending, seq=link.seq,
            created_at=timestamp(link.created_ms),
        )  # fmt: skip
        try:
            quota = await self.accounts.open_quota(request, timeout_s)
        except grpc.aio.AioRpcError as e:
            if e.code() in _REFUSALS and reason_of(e):  # refused: nothing was written there
                await self._forget(keys=self._keys(link), args=[link.quota_id])
            raise  # else it may have been opened: the mark stays, its sweep decides
        await self.sync(link, quota, timeout_s, upto=now)
        return quota

    async def get(self, quota_id: str, timeout_s: float) -> pb.Quota:
        return await self._read(await self.link(quota_id), timeout_s)

    async def change(self, quota_id: str, amount: int, timeout_s: float) -> pb.Quota:
        """N2: the new total granted (no view changes: the quota stays where it is)."""
        link = await self.link(quota_id)
        return await self.accounts.change_quota(link.funder_id, quota_id, amount, timeout_s)

    async def end(
        self, quota_id: str, reason: int, timeout_s: float, only_pending: bool = False
    ) -> pb.Quota:
        """N2, N4, B14: ENDED with what remains released (one step on the funder's account),
        then the relative's side; one ended before is returned as it is."""
        link = await self.link(quota_id)
        marked = await self._mark(link)
        request = apb.CloseQuotaRequest(
            quota_id=quota_id, funder_id=link.funder_id, reason=reason,  # type: ignore[arg-type]
            only_pending=only_pending, relative_id=link.relative_id,
            relationship=link.relationship,  # type: ignore[arg-type]
            seq=link.seq, created_at=timestamp(link.created_ms),
        )  # fmt: skip
        quota = await self.accounts.close_quota(request, timeout_s)
        await self.sync(link, quota, timeout_s, upto=marked)
        return quota

    async def confirm(self, quota_id: str, timeout_s: float) -> pb.Quota:
        """B14: the relative's yes: ACTIVE and set aside now, if still pending and in time (one
        whose time has passed ends NOT_CONFIRMED instead); anything else as it is."""
        link = await self.link(quota_id)
        quota = await self._read(link, timeout_s)
        if int(quota.status) != QuotaStatus.PENDING_CONSENT:
            return quota
        province = quota_provinces(quota_id)[0]
        lapses = await self.store.redis.zscore(Keys.consent_due(province), quota_id)
        if lapses is not None and float(lapses) <= self.now_ms():
            return await self.end(quota_id, QuotaEndReason.NOT_CONFIRMED, timeout_s, True)
        marked = await self._mark(link)
        quota = await self.accounts.activate_quota(link.funder_id, quota_id, timeout_s)
        await self.sync(link, quota, timeout_s, upto=marked)
        return quota

    async def listed(self, pid: str, as_funder: bool, include_ended: bool,
                   timeout_s: float) -> list[pb.Quota]:  # fmt: skip
        """His quotas as funder or as relative, in grant order (N3's "oldest first")."""
        found: list[str] = []
        for province in await self.store.provinces(pid):
            views = await self.store.views(province, pid)
            found += views.funded if as_funder else views.granted
        links = await self.links(found)
        quotas = await self.accounts.quotas([(lk.funder_id, lk.quota_id) for lk in links],
                                            timeout_s)  # fmt: skip
        ordered = sorted(quotas, key=lambda found: found[1])
        return [q for q, _ in ordered if include_ended or int(q.status) != QuotaStatus.ENDED]

    # -- keeping the two sides together ------------------------------------------------------
    async def sync(
        self, link: QuotaLink, quota: pb.Quota, timeout_s: float, upto: int | None = None
    ) -> None:
        """Both people's views as the funder's account says the quota is (each person's
        provinces recorded first, so his views are found), the relative's order pushed if it
        changed, then the quota's mark off (`upto`: only if not marked again since)."""
        funder_province, relative_province = quota_provinces(link.quota_id)
        async with self.store.redis.pipeline(transaction=False) as pipe:
            pipe.sadd(Keys.where(link.funder_id), funder_province)
            pipe.sadd(Keys.where(link.relative_id), relative_province)
            await pipe.execute()
        await self.store.redis.hset(Keys.person(funder_province, link.funder_id),
                                    f"fq:{link.quota_id}", link.seq)  # fmt: skip
        keys = [Keys.person(relative_province, link.relative_id),
                Keys.order_outbox(relative_province)]  # fmt: skip
        state = _SIDE_STATE[QuotaStatus(quota.status)]
        args: list[str | int] = [link.quota_id, link.seq, link.funder_id, state, link.relative_id]
        if int(await self._side(keys=keys, args=args)):
            await self.lifecycle.push_order(link.relative_id, timeout_s)
        if int(quota.status) != QuotaStatus.PENDING_CONSENT:
            await self.store.redis.zrem(Keys.consent_due(quota_provinces(link.quota_id)[0]),
                                        link.quota_id)  # fmt: skip
        bucket = Keys.views_due(quota_provinces(link.quota_id)[0])
        await self.due.clear(link.quota_id, bucket, upto=upto)

    async def _mark(self, link: QuotaLink) -> int:
        """The quota marked due (its sides to be brought together) before it changes."""
        now = self.now_ms()
        await self.store.redis.zadd(Keys.views_due(quota_provinces(link.quota_id)[0]),
                                    {link.quota_id: now})  # fmt: skip
        return now

    async def _finish_marked(self, bucket: str, quota_id: str) -> None:
        """A quota marked longer ago than a call lasts: its sides brought together from the
        funder's account; one the account never opened is recorded ENDED there first."""
        try:
            link = await self.link(quota_id)
        except DomainError:
            await self.due.clear(quota_id, bucket)
            return
        found = await self.accounts.quotas([(link.funder_id, quota_id)], BACKGROUND_TIMEOUT_S)
        if found:
            await self.sync(link, found[0][0], BACKGROUND_TIMEOUT_S)
            return
        request = apb.CloseQuotaRequest(
            quota_id=quota_id, funder_id=link.funder_id,
            reason=QuotaEndReason.BY_FUNDER,  # type: ignore[arg-type]
            relative_id=link.relative_id,
            relationship=link.relationship,  # type: ignore[arg-type]
            seq=link.seq, created_at=timestamp(link.created_ms),
        )  # fmt: skip
        ended = await self.accounts.close_quota(request, BACKGROUND_TIMEOUT_S)
        log.info("quota never opened recorded ended", extra={"fields": {"quota_id": quota_id}})
        await self.sync(link, ended, BACKGROUND_TIMEOUT_S)

    async def _lapse(self, bucket: str, quota_id: str) -> None:
        """A quota not confirmed in time (B14): ENDED NOT_CONFIRMED if still pending."""
        try:
            await self.end(quota_id, QuotaEndReason.NOT_CONFIRMED, BACKGROUND_TIMEOUT_S, True)
        except DomainError as e:
            if e.reason != "QUOTA_NOT_FOUND":
                raise
        await self.lapsing.clear(quota_id, bucket)

    # -- automatic ends (N4) -------------------------------------------------------------------
    async def relative_changed(self, pid: str, at_ms: int, moved: bool) -> None:
        """His stop, withdrawal or move (an account event at `at_ms`) ends the quotas granted
        to him before it: MOVED (`moved`) or INSURANCE_ENDED."""
        reason = QuotaEndReason.MOVED if moved else QuotaEndReason.INSURANCE_ENDED
        for views in await self._views(pid):
            await self._end_granted(views, at_ms, reason)

    async def funder_changed(self, pid: str) -> None:
        """His own stop, withdrawal, move or change to resident ended his quotas in its script
        (N4); the relatives' sides follow."""
        for views in await self._views(pid):
            await self._follow_funded(views.funded)

    async def _views(self, pid: str) -> list[Views]:
        return [await self.store.views(p, pid) for p in await self.store.provinces(pid)]

    async def _end_granted(self, views: Views, at_ms: int, reason: QuotaEndReason) -> None:
        for link in await self.links(views.granted):
            if link.created_ms > at_ms:  # granted after the change: not his to end
                continue
            quota = await self.end(link.quota_id, reason, BACKGROUND_TIMEOUT_S)
            log.info("quota ended with the relative's account",
                     extra={"fields": {"quota_id": link.quota_id,
                                       "status": int(quota.status)}})  # fmt: skip

    async def _follow_funded(self, quota_ids: Sequence[str]) -> None:
        links = await self.links(quota_ids)
        found = await self.accounts.quotas([(lk.funder_id, lk.quota_id) for lk in links],
                                           BACKGROUND_TIMEOUT_S)  # fmt: skip
        by_id = {q.quota_id: q for q, _ in found}
        for link in links:
            if link.quota_id in by_id:
                await self.sync(link, by_id[link.quota_id], BACKGROUND_TIMEOUT_S)

    # -- reading ---------------------------------------------------------------------------------
    async def link(self, quota_id: str) -> QuotaLink:
        found = await self.links([quota_id])
        if not found:
            raise DomainError("QUOTA_NOT_FOUND", "no such quota")
        return found[0]

    async def links(self, quota_ids: Sequence[str]) -> list[QuotaLink]:
        """The records of these quotas, in the order given; unknown ids left out."""
        keys: list[tuple[str, str]] = []
        for quota_id in quota_ids:
            try:
                keys.append((quota_id, Keys.quota(quota_id)))
            except ValueError:
                continue
        raws = await get_many(self.store.redis, [key for _, key in keys])
        return [QuotaLink.from_record(qid, orjson.loads(raw))
                for (qid, _), raw in zip(keys, raws, strict=True) if raw]  # fmt: skip

    async def _read(self, link: QuotaLink, timeout_s: float) -> pb.Quota:
        found = await self.accounts.quotas([(link.funder_id, link.quota_id)], timeout_s)
        if not found:  # a grant still being made, or one never made
            raise DomainError("QUOTA_NOT_FOUND", "no such quota")
        return found[0][0]

    @staticmethod
    def _keys(link: QuotaLink) -> list[str]:
        province = quota_provinces(link.quota_id)[0]
        return [Keys.quota(link.quota_id), Keys.views_due(province), Keys.consent_due(province)]
