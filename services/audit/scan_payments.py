"""Reading payment records (a settlement's or a premium's) with what their payers' accounts hold
for each leg: the debit entry, the refund record and entry, the consumption-record indexes."""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

from services.account.domain import Payment, Share, place_in_id
from services.account.store import payment_key, year_key
from services.audit import checks
from services.audit.model import Json, Leg, PaymentBundle
from services.audit.scan import PAYMENTS, Label, ask, inner, obj, parts
from services.common.redisdb import get_many


def _shares(record: Json) -> tuple[Share, ...]:
    if "phase" in record:  # being made in steps, or attempts given up: no legs to read yet
        return ()
    try:
        return Payment.from_script(record).shares
    except (KeyError, ValueError, TypeError):
        return ()  # the check reports the record as unreadable


async def read_payments(redis: aioredis.Redis, keys: list[str]) -> list[PaymentBundle]:
    """Each record; then in one MULTI the record again with, for each leg, the place of its
    debit in the payer's entry index, the payer's refund record for it and his consumption
    index, and the patient's; then the entries at those places. Ledgers only grow and a leg's
    record never changes, so what the later reads find belongs to the moment of the MULTI."""
    first = await get_many(redis, keys)
    found = {inner(k, PAYMENTS): obj(raw) for k, raw in zip(keys, first, strict=True) if raw}
    shares = {pid: _shares(rec) for pid, rec in found.items()}
    got = await ask(redis, _questions(found, shares), atomic=True)
    legs = [(pid, n, s) for pid in found for n, s in enumerate(shares[pid])]
    refunds = {(pid, n): obj(got[pid, n, "refund"]) for pid, n, _ in legs if got[pid, n, "refund"]}
    debits = await _entries(redis, {(pid, n): (s.person_id, got[pid, n, "place"])
                                    for pid, n, s in legs})  # fmt: skip
    refund_entries = await _entries_by_id(redis, {
        (pid, n): (s.person_id, str(refunds[pid, n].get("entry_id")))
        for pid, n, s in legs if (pid, n) in refunds
    })  # fmt: skip
    return [
        PaymentBundle(
            pid, obj(got[pid, "record"]),
            tuple(Leg(debits.get((pid, n)), refunds.get((pid, n)),
                      refund_entries.get((pid, n)), got[pid, n, "paid-by"] is not None)
                  for n in range(len(shares[pid]))),
            got.get((pid, "paid-for")) is not None, got.get((pid, "marker")),
            int(got[pid, "now"][0]) * 1000 + int(got[pid, "now"][1]) // 1000,
        )
        for pid in found if got[pid, "record"]  # else gone since (only a bug deletes one)
    ]  # fmt: skip


def _questions(
    found: dict[str, Json], shares: dict[str, tuple[Share, ...]]
) -> dict[Label, tuple[Any, ...]]:
    questions: dict[Label, tuple[Any, ...]] = {}
    for pid, rec in found.items():
        questions[pid, "now"] = ("TIME",)
        questions[pid, "record"] = ("GET", payment_key(pid))
        patient, year = str(rec.get("patient_id") or ""), checks.premium_year(rec)
        if patient:
            questions[pid, "paid-for"] = ("ZSCORE", parts(patient)["paid-for"], pid)
        if patient and year is not None:
            questions[pid, "marker"] = ("GET", year_key(patient, year))
        for n, s in enumerate(shares[pid]):
            at = parts(s.person_id)
            questions[pid, n, "place"] = ("HGET", at["eidx"], s.entry_id)
            questions[pid, n, "refund"] = ("HGET", at["refunds"], s.entry_id)
            questions[pid, n, "paid-by"] = ("ZSCORE", at["paid-by"], pid)
    return questions


async def _entries(
    redis: aioredis.Redis, places: dict[Label, tuple[str, Any]]
) -> dict[Label, Json]:
    """The ledger entry at each (person, 1-based place from his entry index)."""
    questions = {
        key: ("LINDEX", parts(pid)["ledger"], int(place) - 1)
        for key, (pid, place) in places.items()
        if isinstance(place, str) and place.isdigit() and int(place) > 0
    }
    got = await ask(redis, questions)
    return {key: obj(raw) for key, raw in got.items() if raw is not None}


async def _entries_by_id(
    redis: aioredis.Redis, wanted: dict[Label, tuple[str, str]]
) -> dict[Label, Json]:
    """The ledger entry of each (person, entry id), at the place the id carries or else
    through his entry index."""
    carried = {key: place_in_id(entry_id) for key, (_, entry_id) in wanted.items()}
    got = await ask(
        redis,
        {
            key: ("HGET", parts(pid)["eidx"], entry_id)
            for key, (pid, entry_id) in wanted.items()
            if carried[key] is None
        },
    )
    got |= {key: str(place) for key, place in carried.items() if place is not None}
    return await _entries(redis, {key: (wanted[key][0], place) for key, place in got.items()})
