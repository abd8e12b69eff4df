"""Payments and cancels in steps, for Redis Cluster (GONGJI_REDIS_MODE=cluster).

On one Redis a payment is one script over every account of the family (lua/pay.lua). Under
Redis Cluster each account lives on its own slot, and a script reaches one slot only, so the
same payment is made in steps, each one script on one slot:

1. the record and journal (same slot): an answer if the payment was made; a payment in
   progress under the key is finished (its journal holds its inputs), not started again;
2. the patient's checks (S5, A2) and his payer order's version (B10), reading only;
3. the payment marked in a pending index (`acct:{paying:<n>}`), then its journal written
   (pay_begin): from here on the recovery loop finishes what a crash leaves;
4. a premium's year claimed for this payment on the patient's slot (A2: one per year);
5. each source's share in priority order (pay_share), each written once under a marker on its
   own account, so that every run of the steps, by the caller's retry or by the recovery loop,
   takes the same shares in the same order and never more than the bill (S2, S4);
6. the patient's index (S13), the record PAID and the journal gone (pay_finish), the mark off.

A premium the one source cannot pay is given up: the year's claim and the journal removed
before the refusal is answered. A cancel is three steps the same way (cancel_begin, one refund
per share, cancel_finish). Every step may be cut off; the recovery loop finishes, from the
pending index, whatever is older than the recovery window.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any, cast

import orjson

from services.account.domain import Payment, Source, cancel_reference
from services.account.store import (
    AccountStore,
    StaleOrder,
    account_key,
    cancel_journal_key,
    journal_key,
    marker_key,
    payment_key,
    sources_of,
    year_key,
)
from services.common import metrics
from services.common.enums import EntryKind, PaymentState
from services.common.errors import DomainError
from services.common.redisdb import spread

log = logging.getLogger(__name__)

PENDING_BUCKETS = 16  # the pending index, spread over this many slots
_CANCEL = "cancel:"  # a pending cancel's mark, before its payment id
_PREMIUM_YEAR_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 0
"""


def pending_bucket(n: int) -> str:
    """The n-th part of the pending index, each on a slot of its own."""
    return f"acct:{{paying:{n}}}"


def pending_key(payment_id: str) -> str:
    return pending_bucket(spread(payment_id, PENDING_BUCKETS))


class Stepwise:
    def __init__(self, store: AccountStore, recovery_after_ms: int, interval_s: float = 1.0):
        self.store = store
        self.redis = store.redis
        self.recovery_after_ms = recovery_after_ms
        self.interval_s = interval_s
        self._release_year = self.redis.register_script(_PREMIUM_YEAR_RELEASE)

    # -- paying ---------------------------------------------------------------------------
    async def pay(
        self, payment_id: str, kind: int, patient: str, sources: Sequence[Source], amount: int,
        on_date: str, quote: bool, fp: str, details: str = "", premium_year: int = 0,
        order_version: int | None = None,
    ) -> Payment:  # fmt: skip
        """What AccountStore.pay does in one script, in the steps above."""
        keys = [payment_key(payment_id), journal_key(payment_id)]
        if not quote:
            found = await self.store.call("pay_begin", keys, [fp, ""])
            if "state" in found:
                return Payment.from_script(found)
            if found:
                return await self._finish(found)
        version = "" if order_version is None else order_version
        d = await self.store.call(
            "pay_patient", [account_key(patient), marker_key(patient, "-")],
            ["", int(kind), int(quote), version, premium_year],
        )  # fmt: skip
        if "stale_order" in d:
            raise StaleOrder(sources_of(d["stale_order"]), int(d["version"]))
        journal = {
            "payment_id": payment_id, "kind": str(int(kind)), "patient_id": patient,
            "details": details, "fp": fp, "cancelled_ms": "0", "cancel_reason": "",
            "cancel_request_id": "", "at_ms": str(d["at_ms"]),
            "inputs": {"sources": [[s.person_id, s.binding_id] for s in sources],
                       "amount": amount, "on_date": on_date, "year": premium_year},
        }  # fmt: skip
        if quote:
            shares = await self._shares(journal, quote=True)
            quoted = {**journal, "shares": shares, "state": str(int(PaymentState.QUOTED))}
            return Payment.from_script(quoted)
        await self.redis.zadd(pending_key(payment_id), {payment_id: _now_ms()})
        found = await self.store.call("pay_begin", keys, [fp, orjson.dumps(journal).decode()])
        if "state" in found:  # made meanwhile, by a retry racing this call
            return Payment.from_script(found)
        return await self._finish(found)

    async def _finish(self, journal: dict[str, Any]) -> Payment:
        """Steps 4-6 of a payment whose journal is written; again and again, the same."""
        payment_id, patient = journal["payment_id"], journal["patient_id"]
        inputs = journal["inputs"]
        premium = int(journal["kind"]) == EntryKind.PREMIUM
        if premium:
            claim = year_key(patient, int(inputs["year"]))
            taken = await self.redis.set(claim, payment_id, nx=True)
            if not taken and await self.redis.get(claim) != payment_id:
                await self._give_up(journal)
                raise DomainError("PREMIUM_ALREADY_PAID", "the premium of this year is paid")
        try:
            shares = await self._shares(journal, quote=False)
            if premium and not shares:
                raise DomainError("NOT_BOUND", "no account to pay the premium from")
        except DomainError:
            if premium:
                await self._give_up(journal)
            raise
        if not premium:
            paid_for = f"{account_key(patient)}:paid-for"
            await self.redis.zadd(paid_for, {payment_id: int(journal["at_ms"])}, nx=True)
        keys = [payment_key(payment_id), journal_key(payment_id)]
        d = await self.store.call("pay_finish", keys, ["", orjson.dumps(shares).decode()])
        await self.redis.zrem(pending_key(payment_id), payment_id)
        return Payment.from_script(d)

    async def _shares(self, journal: dict[str, Any], quote: bool) -> list[dict[str, Any]]:
        """Each source's share, in order, while anything is left to pay."""
        payment_id, inputs = journal["payment_id"], journal["inputs"]
        left = int(inputs["amount"])
        shares: list[dict[str, Any]] = []
        for person_id, binding_id in inputs["sources"]:
            if left == 0:
                break
            keys = [account_key(person_id), marker_key(person_id, f"pay:{payment_id}")]
            share = await self.store.call(
                "pay_share", keys,
                ["", payment_id, len(shares) + 1, journal["kind"], left, journal["patient_id"],
                 binding_id, inputs["on_date"], int(quote), journal.get("at_ms", 0)],
            )  # fmt: skip
            if int(share["amount"]) > 0:
                shares.append(share)
                left -= int(share["amount"])
        return shares

    async def _give_up(self, journal: dict[str, Any]) -> None:
        """A premium not paid: its year's claim, its journal and its mark removed, in that
        order (cut off half-way, the recovery loop runs the steps again and gives up again)."""
        payment_id = journal["payment_id"]
        claim = year_key(journal["patient_id"], int(journal["inputs"]["year"]))
        await self._release_year(keys=[claim], args=[payment_id])
        await self.redis.delete(journal_key(payment_id))
        await self.redis.zrem(pending_key(payment_id), payment_id)

    # -- cancelling -----------------------------------------------------------------------
    async def cancel(
        self, payment_id: str, reason: str, request_id: str, reversal: bool
    ) -> Payment:
        """What AccountStore.cancel_payment does in one script, in steps: the journal, each
        share refunded once (under the ids the one script uses), the record CANCELLED."""
        keys = [payment_key(payment_id), cancel_journal_key(payment_id)]
        args: list[str | int] = ["", reason, request_id, int(reversal)]
        found = await self.store.call("cancel_begin", keys, args)
        if "state" in found:
            return Payment.from_script(found)
        await self.redis.zadd(pending_key(payment_id), {_CANCEL + payment_id: _now_ms()})
        await self._refund_all(payment_id)
        # Answered as the one script answers, now that the record decides.
        return Payment.from_script(await self.store.call("cancel_begin", keys, args))

    async def _refund_all(self, payment_id: str) -> None:
        record = await self.store.payment(payment_id)
        if record is None:
            raise DomainError("INTERNAL", "a cancel in progress has no record")
        for i, share in enumerate(record.shares, start=1):
            await self.store.refund(
                share.person_id, f"{payment_id}:refund:{i}", share.entry_id,
                cancel_reference(payment_id), (f"{payment_id}-r{i}", f"{payment_id}-p{i}"),
            )  # fmt: skip
        keys = [payment_key(payment_id), cancel_journal_key(payment_id)]
        await self.store.call("cancel_finish", keys, [""])
        await self.redis.zrem(pending_key(payment_id), _CANCEL + payment_id)

    # -- finishing what was cut off -------------------------------------------------------
    async def finish_payment(self, payment_id: str) -> None:
        """The payment under this key made, if it is in progress (a reversal waits for it)."""
        raw = await self.redis.get(journal_key(payment_id))
        if raw:
            await self._finish(orjson.loads(raw))

    async def recover(self, marked: str) -> None:
        """One entry of the pending index: its payment or cancel finished, or its mark off."""
        if marked.startswith(_CANCEL):
            payment_id = marked[len(_CANCEL) :]
            if await self.redis.exists(cancel_journal_key(payment_id)):
                await self._refund_all(payment_id)
            await self.redis.zrem(pending_key(payment_id), marked)
            return
        try:
            await self.finish_payment(marked)
        except DomainError as e:  # a premium given up: what its caller would have heard
            log.info("payment given up", extra={"fields": {"reason": e.reason}})
        await self.redis.zrem(pending_key(marked), marked)

    async def run(self) -> None:
        """Finishes every payment and cancel marked longer ago than the recovery window."""
        while True:
            for n in range(PENDING_BUCKETS):
                key = pending_bucket(n)
                due = _now_ms() - self.recovery_after_ms
                for marked in cast(list[str], await self.redis.zrangebyscore(key, 0, due)):
                    try:
                        await self.recover(marked)
                        metrics.RELAYED_LATE.labels("payment-finished").inc()
                    except Exception:
                        log.warning("payment not finished yet", exc_info=True)
            await asyncio.sleep(self.interval_s)


def _now_ms() -> int:
    return int(time.time() * 1000)
