"""Payments and cancels under Redis Cluster (GONGJI_REDIS_MODE=cluster): the family's locks, one
plan, each account's step once.

On one Redis a payment is one script over every account of the family (lua/pay.lua), and the
script is the family's lock. Under Redis Cluster each account lives on its own slot and a
script reaches one slot only, so the payment runs payment.lua's same steps one slot at a time,
under the family's locks (locks.py):

1. the attempt marked in the pending index (services.common.intents), with the accounts it is
   about to lock: from here on the recovery loop finishes or gives up whatever a crash leaves;
2. every account the payment may debit locked, in sorted person order, and read under its lock
   (lock_read): the payers, the patient when his own account may pay or it is a premium; a
   patient not locked is read after the locks are held, so what the plan sees is what a single
   script would have seen at that moment. Whatever a plan relies on changes only under the
   account's lock (statuses, stops, types and family-aid grants too: server.py, grants.py);
3. the plan, made once (pay_plan, on the payment's slot) and journaled in the record with the
   fencing token of each lock it was made under; a payment made is answered instead, one being
   made (its journal) is finished, not begun again;
4. each locked account's step (pay_step), in parallel across slots: its share debited once
   (an entry named by the payment), the patient's marks, its lock released;
5. the record PAID (pay_done), the mark off.

Whoever meets a lock whose lease ran out runs that payment's step on that account first (or,
when its plan was never journaled, gives the attempt up for good), so a plan is never overtaken
and a holder that lost its lock finds its share written, or is refused. The recovery loop
finishes, from the pending index, every attempt older than the recovery window: its journal
finished, or the attempt given up (it can never journal afterwards) and its locks released.

A cancel is three steps the same way (cancel_begin: the cancel journaled in the record; one
refund per share: refund_step; cancel_done) and takes no lock: refunds only add.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

import orjson

from services.account.domain import Payment, Source
from services.account.locks import Busy, Locks, Read, Wanted, new_token
from services.account.store import (
    AccountStore,
    StaleOrder,
    account_key,
    beijing_day,
    lists_of,
    marker_key,
    payment_key,
    sources_of,
)
from services.common.enums import EntryKind, PaymentState
from services.common.errors import DomainError
from services.common.intents import Intents, now_ms

log = logging.getLogger(__name__)

PENDING_BUCKETS = 16  # the pending index, spread over this many slots
_TRIES = 3  # a patient whose own account became able to pay while he was not locked: again


def pending_bucket(n: int) -> str:
    """The n-th part of the pending index, each on a slot of its own."""
    return f"acct:{{paying:{n}}}"


def _member(kind: str, payment_id: str, attempt: str, pids: Sequence[str] = ()) -> str:
    """A mark of the pending index: `pay|cancel <attempt> <person>,... <payment>`, the payment
    id last (it may hold spaces)."""
    return " ".join([kind, attempt, ",".join(pids), payment_id])


class Stepwise:
    def __init__(
        self, store: AccountStore, locks: Locks, recovery_after_ms: int, interval_s: float = 1.0
    ) -> None:
        self.store, self.locks, self.redis = store, locks, store.redis
        locks.resolve = self.resolve
        self.pending = Intents(
            self.redis, [pending_bucket(n) for n in range(PENDING_BUCKETS)], self._recover,
            label="payment-finished", due_after_ms=recovery_after_ms, interval_s=interval_s,
            pending_label="payments",
        )  # fmt: skip

    # -- paying ---------------------------------------------------------------------------
    async def pay(
        self, payment_id: str, kind: int, patient: str, sources: Sequence[Source], amount: int,
        on_date: str, quote: bool, fp: str, details: str = "", premium: str = "",
        order_version: int | None = None, institution_id: str = "", wait_s: float = 2.0,
    ) -> Payment:  # fmt: skip
        """What AccountStore.pay does in one script, in the steps above."""
        ask = _Ask(payment_id, kind, patient, list(sources), amount, on_date, quote, fp, details,
                   premium, "" if order_version is None else str(order_version),
                   institution_id)  # fmt: skip
        if quote:
            return await self._quote(ask)
        lock_patient = ask.premium
        for _ in range(_TRIES):
            try:
                d = await self._attempt(ask, lock_patient, wait_s)
            except Busy:
                d = await self._under_way(ask)
            if d is not None:
                return await self._answer(d)
            lock_patient = True
        raise DomainError("LOCK_TIMEOUT", "the patient's account kept changing; retry")

    async def _under_way(self, ask: _Ask) -> Any:
        """Another runner of this payment holds the locks: its record answers (made, or being
        made: its journal, to finish), or it has not planned yet and the caller tries again."""
        raw = await self.redis.get(payment_key(ask.payment_id))
        if raw is None or orjson.loads(raw).get("phase") == "void":
            raise DomainError("SETTLEMENT_IN_PROGRESS", "this payment is being made; retry")
        nothing: dict[str, Any] = {"patient": {}, "sources": [], "locks": {}}
        return await self._plan(ask, "", nothing, now_ms())

    async def _attempt(self, ask: _Ask, lock_patient: bool, wait_s: float) -> Any:
        """One attempt under the family's locks: the journal (or an answer), or None when the
        patient's own account turned out able to pay while he was not locked."""
        before = None if lock_patient else await self._fields(ask.patient)
        lock_patient = lock_patient or _may_pay(ask, before)
        wanted = ask.wanted(lock_patient)
        attempt, pids = new_token(), sorted({w.person_id for w in wanted})
        member = _member("pay", ask.payment_id, attempt, pids)
        await self.pending.mark(member)
        try:
            taken = await self.locks.take(wanted, attempt, ask.payment_id, wait_s)
            if not lock_patient:  # read again, all locks held
                after = await self._fields(ask.patient)
                if _may_pay(ask, after) or _events(after) != _events(before):
                    await self._undo(pids, attempt, member)
                    return None
                taken[ask.patient] = Read(after)
            read = _what_was_read(ask, taken)
        except BaseException:
            await asyncio.shield(self._undo(pids, attempt, member))
            raise
        try:
            d = await self._plan(ask, attempt, *read)
        except DomainError:  # refused: nothing journaled
            await asyncio.shield(self._undo(pids, attempt, member))
            raise
        except BaseException:
            # Cut off (a deadline's cancel, Redis gone) with its plan journaled or not: settled
            # now as the recovery loop would settle it (finished, or given up and released).
            # Its mark may be gone already: recovered while this runner stood still past the
            # window, before it took the locks it still wanted; nothing else would free those.
            await asyncio.shield(self._settle_cut_off(member))
            raise
        if "stale_day" in d:  # the Beijing day turned since the locks: again, in the new day
            await asyncio.shield(self._undo(pids, attempt, member))
            return None
        # Anything else (cut off, cancelled) may come after the journal was written: the locks
        # and the mark stay for whoever finishes it (a retry, a resolver, the recovery loop).
        if d.get("attempt") != attempt:  # answered, or another attempt's journal
            await asyncio.shield(self._undo(pids, attempt, member))
        elif "phase" in d:
            d["_member"] = member
        return d

    async def _settle_cut_off(self, member: str) -> None:
        try:
            await self.recover(member)
        except Exception:  # (Redis gone: the mark, if any, stays for the recovery loop)
            log.warning("a payment cut off is left to the recovery loop", exc_info=True)

    async def _undo(self, pids: list[str], attempt: str, member: str) -> None:
        """An attempt that journaled nothing: what it locked released, its mark off. (If its
        plan could still be journaled, the mark stays: the recovery loop decides.)"""
        await self.locks.release_owned(pids, attempt)
        await self.pending.clear(member)

    async def _answer(self, d: dict[str, Any]) -> Payment:
        if "stale_order" in d:
            raise StaleOrder(sources_of(d["stale_order"], d.get("quotas")), int(d["version"]))
        if d.get("phase") == "paying":
            return await self._finish(d)
        return Payment.from_script(d)

    async def _fields(self, pid: str) -> list[Any] | None:
        """The account's fields, read without its lock (a plain HMGET): only to choose what
        to lock."""
        found = await self.store.read_fields(pid)
        return found if found[0] else None

    async def _plan(self, ask: _Ask, attempt: str, read: dict[str, Any], at_ms: int) -> Any:
        """pay_plan over what was read: the journal, an answer, or a refusal (raised)."""
        args = [ask.fp, ask.payment_id, int(ask.kind), ask.amount, ask.on_date,
                int(ask.quote), ask.version, ask.details, ask.premium_mark, attempt, at_ms,
                _json(read), ask.institution_id]  # fmt: skip
        return await self.store.call("pay_plan", [payment_key(ask.payment_id)], args)

    async def _quote(self, ask: _Ask) -> Payment:
        """S6: the same plan from the accounts as they are, nothing locked, nothing written."""
        wanted = ask.wanted(True)
        found = await asyncio.gather(*(self.locks.read(w) for w in wanted))
        reads = {w.person_id: r for w, r in zip(wanted, found, strict=True) if isinstance(r, Read)}
        return await self._answer(await self._plan(ask, "", *_what_was_read(ask, reads)))

    # -- finishing a journaled plan ---------------------------------------------------------
    async def _finish(self, journal: dict[str, Any]) -> Payment:
        """Every locked account's step, the patient's index, the record PAID; again and again,
        the same. Run by the attempt that journaled, a retry, the recovery loop or a replica."""
        member = journal.pop("_member", None)
        payment_id = journal["payment_id"]
        locks: dict[str, str] = journal["locks"] or {}
        entries: dict[str, Any] = {}
        for found in await asyncio.gather(*(self._step(journal, p) for p in locks)):
            entries.update(found)
        if journal["patient_id"] not in locks:  # a settlement's patient not locked
            paid_for = f"{account_key(journal['patient_id'])}:paid-for"
            await self.redis.zadd(paid_for, {payment_id: int(journal["at_ms"])})
        shares = [
            {**s, "entry_id": entries[str(n)]["entry_id"],
             "balance_after": entries[str(n)]["balance_after"]}
            for n, s in enumerate(journal["shares"] or [], start=1)
        ]  # fmt: skip
        d = await self.store.call("pay_done", [payment_key(payment_id)], ["", _json(shares)])
        await self._list(d)
        if member:
            await self.pending.clear(member)
        return Payment.from_script(d)

    async def _step(self, journal: dict[str, Any], pid: str) -> dict[str, Any]:
        """The payment's step on one locked account (lua/pay_step.lua): its shares there."""
        mine = [
            {"n": n, "amount": s["amount"], "own": s["own"], "quota_id": s.get("quota_id", "")}
            for n, s in enumerate(journal["shares"] or [], start=1) if s["person_id"] == pid
        ]  # fmt: skip
        premium = int(journal["kind"]) == EntryKind.PREMIUM
        mark = "" if pid != journal["patient_id"] else (journal["year"] if premium else "S")
        args = ["", journal["payment_id"], _json(mine), journal["kind"], "", journal["at_ms"],
                journal["locks"][pid], "", mark]  # fmt: skip
        keys = [account_key(pid), marker_key(pid, "-")]
        return dict(await self.store.call("pay_step", keys, args))

    async def _list(self, rec: dict[str, Any]) -> None:
        """A settlement made or cancelled, in its institution's day and, across provinces, the
        month's clearing (payment.lua `list_settlement`): again and again the same. Written
        before the payment's mark is cleared, so that a day read as final (flush) finds it."""
        institution = rec.get("inst")
        if not institution or rec.get("phase"):
            return
        items = [("+", int(rec["at_ms"]))]
        if int(rec["state"]) == PaymentState.CANCELLED:
            items.append(("-", int(rec["cancelled_ms"])))
        for sign, at_ms in items:
            day_list, month_list = lists_of(institution, beijing_day(at_ms))
            member = sign + rec["payment_id"]
            await self.redis.zadd(day_list, {member: at_ms})
            if rec.get("cross"):
                await self.redis.zadd(month_list, {member: at_ms})

    async def resolve(self, payment_id: str, pid: str, fence: str, token: str) -> None:
        """A lock of `payment_id` whose lease ran out, met by whoever wants the account next:
        the payment's step here if its plan holds this lock; else, if its attempt never
        journaled, the attempt given up for good; then the lock released."""
        key = payment_key(payment_id)
        raw = await self.redis.get(key)
        rec = orjson.loads(raw) if raw else None
        if rec is None or rec.get("phase") == "void":
            rec = await self.store.call("void_attempt", [key], ["", token, payment_id, "0"])
        if rec.get("phase") == "paying" and (rec.get("locks") or {}).get(pid) == fence:
            await self._step(rec, pid)
        await self.locks.release(pid, fence=fence)

    # -- cancelling -----------------------------------------------------------------------
    async def cancel(
        self, payment_id: str, reason: str, request_id: str, reversal: bool
    ) -> Payment:
        """What AccountStore.cancel_payment does in one script, in steps: the cancel journaled
        in the record, each share refunded once, the record CANCELLED."""
        key, attempt = payment_key(payment_id), new_token()
        member = _member("cancel", payment_id, attempt)
        await self.pending.mark(member)
        try:
            args = ["", reason, request_id, int(reversal), attempt]
            found = await self.store.call("cancel_begin", [key], args)
        except BaseException:
            await asyncio.shield(self.pending.clear(member))
            raise
        if "cancelling" not in found:
            await self._list(found)
            await self.pending.clear(member)
            return Payment.from_script(found)
        await self._refund_all(found)
        await self.pending.clear(member)
        # Answered as the one script answers, now that the record decides.
        return Payment.from_script(await self.store.call("cancel_begin", [key], args))

    async def _refund_all(self, rec: dict[str, Any]) -> None:
        payment_id = rec["payment_id"]
        await asyncio.gather(*(
            self.store.call("refund_step", [account_key(s["person_id"]),
                                            marker_key(s["person_id"], "-")],
                            ["", payment_id, i, _json(s)])
            for i, s in enumerate(rec["shares"] or [], start=1)
        ))  # fmt: skip
        await self._list(await self.store.call("cancel_done", [payment_key(payment_id)], [""]))

    # -- finishing what was cut off -------------------------------------------------------
    async def finish_payment(self, payment_id: str) -> None:
        """The payment under this key made, if it is being made (a reversal waits for it)."""
        raw = await self.redis.get(payment_key(payment_id))
        found = orjson.loads(raw) if raw else None
        if found and found.get("phase") == "paying":
            await self._finish(found)

    async def _recover(self, bucket: str, member: str) -> int:
        """One mark older than the recovery window (or of an attempt cut off): its journal
        finished, or its attempt given up for good; then what the attempt locked released, and
        the mark off."""
        kind, attempt, pids, payment_id = member.split(" ", 3)
        key = payment_key(payment_id)
        cancel = kind == "cancel"
        rec = await self.store.call("void_attempt", [key], ["", attempt, payment_id, int(cancel)])
        if cancel and "cancelling" in rec:
            await self._refund_all(rec)
        elif not cancel and rec.get("phase") == "paying":
            await self._finish(rec)  # its own journal, or another attempt's it met
        else:
            await self._list(rec)  # finished by its own runner, maybe not yet listed
        if pids:  # given up, or the payment made (by its steps or another attempt's): the
            # locks it may still hold, back (its own steps released those of its plan)
            await self.locks.release_owned(pids.split(","), attempt)
        await self.pending.clear(member, bucket)
        return 1

    async def flush(self, before_ms: int) -> None:
        """Every payment and cancel marked before `before_ms` finished (or its attempt given up)
        now, not when the recovery window is over: a day (or month) whose end is past is read
        only after this, so nothing can still be added to it (ListDayPayments)."""
        for bucket in self.pending.buckets:
            marked = await self.redis.zrangebyscore(bucket, "-inf", before_ms)
            for member in marked:
                await self._recover(bucket, str(member))

    async def recover(self, member: str) -> None:
        await self._recover(self.pending.bucket(member), member)

    async def run(self) -> None:
        await self.pending.run()


class _Ask:
    """A payment as asked, and what has been read for it."""

    def __init__(
        self, payment_id: str, kind: int, patient: str, sources: list[Source], amount: int,
        on_date: str, quote: bool, fp: str, details: str, premium_mark: str, version: str,
        institution_id: str,
    ) -> None:  # fmt: skip
        self.payment_id, self.kind, self.patient, self.sources = payment_id, kind, patient, sources
        self.amount, self.on_date, self.quote, self.fp = amount, on_date, quote, fp
        self.details, self.premium_mark, self.version = details, premium_mark, version
        self.institution_id = institution_id
        self.premium = kind == EntryKind.PREMIUM

    @property
    def own_listed(self) -> bool:
        return any(s.person_id == self.patient and not s.binding_id for s in self.sources)

    def wanted(self, with_patient: bool) -> list[Wanted]:
        """The accounts to lock: every source's (one per person, with his grant and quotas to
        read), and the patient when he is asked for."""
        grants: dict[str, str] = {}
        quotas: dict[str, list[str]] = {}
        for s in self.sources:
            if s.person_id == self.patient:
                continue
            quotas.setdefault(s.person_id, [])
            if s.quota_id:
                quotas[s.person_id].append(s.quota_id)
            elif s.binding_id:
                grants[s.person_id] = s.binding_id
        out = [Wanted(p, grants.get(p, ""), "", tuple(q)) for p, q in quotas.items()]
        if with_patient:
            out.append(Wanted(self.patient, "", self.premium_mark if self.premium else ""))
        return out


def _may_pay(ask: _Ask, fields: list[Any] | None) -> bool:
    """Whether the patient's own account, listed as a source, may give anything now: then it is
    locked like every account the payment may debit. The payment script decides for good."""
    if not ask.own_listed or fields is None:
        return False
    balance = fields[5]
    return balance is not None and balance is not False and int(balance) > 0


def _events(fields: list[Any] | None) -> str:
    """How many events the account has had (every change of its status, stop, type or region
    is one): the same before and after a stretch of time, nothing of that changed in it."""
    return str(fields[18]) if fields else ""


def _what_was_read(ask: _Ask, taken: dict[str, Read]) -> tuple[dict[str, Any], int]:
    """What pay_plan takes: the patient's and each source's fields, grant and premium mark, and
    the fencing token of every lock the plan is made under; and the payment's time: the Redis
    clock of the last lock taken. Every lock was held then, and nothing the plan relies on
    changes under a lock; a patient not locked was read before the locks and again after them,
    with no change of his status, stop or type in between (his count of events the same)."""
    patient = taken.get(ask.patient) or Read(None)
    at_ms = max((r.at_ms for r in taken.values()), default=0) or now_ms()
    read = {
        "patient": {"fields": patient.fields or False, "year_paid": patient.year_paid},
        "sources": [
            {"person_id": s.person_id, "binding_id": s.binding_id, "quota_id": s.quota_id,
             "fields": (taken.get(s.person_id) or Read(None)).fields or False,
             "grant": (taken.get(s.person_id) or Read(None)).grant,
             "quota": (taken.get(s.person_id) or Read(None)).quotas.get(s.quota_id, False)}
            for s in ask.sources
        ],
        "locks": {pid: r.fence for pid, r in taken.items() if r.fence},
    }  # fmt: skip
    return read, at_ms


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()
