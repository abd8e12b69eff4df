"""Reading the binding service's keys (services.binding.store.Keys) person by person, with what
the account service keeps of them (his grants, his payer order), and record by record."""

from __future__ import annotations

import dataclasses
import fnmatch
from typing import Any

import redis.asyncio as aioredis

from services.account.store import account_key
from services.audit.model import PersonBundle, ProvinceViews, RecordBundle
from services.audit.scan import (
    Label,
    ask,
    binding_key,
    binding_record,
    granted,
    inner,
    parts,
    records,
)
from services.binding.domain import Views
from services.binding.store import Keys, provinces_of

PERSONS = Keys.where("*")
# Keys.record takes a real binding id only; its form with wildcards, checked against it here.
RECORDS = "bind:{*}:rec:*"
assert fnmatch.fnmatchcase(Keys.record("B4343" + "0" * 16), RECORDS)


async def read_persons(redis: aioredis.Redis, keys: list[str]) -> list[PersonBundle]:
    """Each person's provinces; then in one MULTI his views in each, his grants and the payer
    order at his account; then the records his views name."""
    pids = [inner(k, PERSONS) for k in keys]
    where = await ask(redis, {(pid,): ("SMEMBERS", Keys.where(pid)) for pid in pids})
    provinces = {pid: sorted(str(p) for p in where[pid,]) for pid in pids}
    questions: dict[Label, tuple[Any, ...]] = {}
    for pid in pids:
        questions[pid, "order"] = ("HMGET", account_key(pid), "payers", "payers_v")
        questions[pid, "grants"] = ("HGETALL", parts(pid)["grants"])
        for p in provinces[pid]:
            questions[pid, p, "views"] = ("HGETALL", Keys.person(p, pid))
            questions[pid, p, "pending"] = ("ZSCORE", Keys.order_outbox(p), pid)
    got = await ask(redis, questions, atomic=True)
    views = {(pid, p): Views.parse(got[pid, p, "views"]) for pid in pids for p in provinces[pid]}
    named = {pid: _named([views[pid, p] for p in provinces[pid]]) for pid in pids}
    found = await records(redis, set().union(*named.values()), binding_key, binding_record)
    return [
        PersonBundle(
            pid,
            {p: _province(p, views[pid, p], got[pid, p, "pending"] is not None)
             for p in provinces[pid]},
            {i: found.get(i) for i in named[pid]}, granted(pid, got[pid, "grants"]),
            got[pid, "order"][0], int(got[pid, "order"][1] or 0),
        )
        for pid in pids if provinces[pid]
    ]  # fmt: skip


def _named(views: list[Views]) -> set[str]:
    """Every binding id one of his views names."""
    return {
        i for v in views
        for i in (*v.binder_all, *v.pairs.values(), *v.beneficiary_all, *v.payers, *v.awaiting)
    }  # fmt: skip


def _province(p: str, v: Views, pending: bool) -> ProvinceViews:
    return ProvinceViews(**dataclasses.asdict(v), province=p, order_pending=pending)


async def read_records(redis: aioredis.Redis, keys: list[str]) -> list[RecordBundle]:
    """Each binding record, then whether both people's views and `where` sets list it."""
    ids = [k.rsplit(":", 1)[-1] for k in keys]
    ids = [i for i, k in zip(ids, keys, strict=True) if binding_key(i) == k]
    found = await records(redis, set(ids), binding_key, binding_record)
    kept = {i: rec for i, rec in found.items() if rec}
    questions: dict[Label, tuple[Any, ...]] = {}
    for i, rec in kept.items():
        pb, pe = provinces_of(i)
        binder, beneficiary = str(rec.get("binder_id")), str(rec.get("beneficiary_id"))
        questions |= {
            (i, "binder_all"): ("HEXISTS", Keys.person(pb, binder), f"a:{i}"),
            (i, "beneficiary_all"): ("HEXISTS", Keys.person(pe, beneficiary), f"e:{i}"),
            (i, "binder_where"): ("SISMEMBER", Keys.where(binder), pb),
            (i, "beneficiary_where"): ("SISMEMBER", Keys.where(beneficiary), pe),
        }
    got = await ask(redis, questions)
    return [
        RecordBundle(i, rec, bool(got[i, "binder_all"]), bool(got[i, "beneficiary_all"]),
                     bool(got[i, "binder_where"]), bool(got[i, "beneficiary_where"]))
        for i, rec in kept.items()
    ]  # fmt: skip
