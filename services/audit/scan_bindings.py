"""Reading the binding service's keys (services.binding.store.Keys) person by person, with what
the account service keeps of them (his grants, his payer order), and record by record."""

from __future__ import annotations

import fnmatch
from typing import Any

import redis.asyncio as aioredis

from services.account.store import account_key
from services.audit.model import PersonBundle, ProvinceViews, RecordBundle
from services.audit.scan import Label, ask, binding_key, granted, inner, parts, records
from services.binding.store import Keys, provinces_of

PERSONS = Keys.where("*")
# Keys.record takes a real binding id only; its form with wildcards, checked against it here.
RECORDS = "bind:{*}:rec:*"
assert fnmatch.fnmatchcase(Keys.record("B4343" + "0" * 16), RECORDS)


async def read_persons(redis: aioredis.Redis, keys: list[str]) -> list[PersonBundle]:
    """Each person's provinces; then in one MULTI his views in each, his grants and the payer
    order at his account; then the records his views name and his pair keys."""
    pids = [inner(k, PERSONS) for k in keys]
    where = await ask(redis, {(pid,): ("SMEMBERS", Keys.where(pid)) for pid in pids})
    provinces = {pid: sorted(str(p) for p in where[pid,]) for pid in pids}
    questions: dict[Label, tuple[Any, ...]] = {}
    for pid in pids:
        questions[pid, "order"] = ("HMGET", account_key(pid), "payers", "payers_v")
        questions[pid, "grants"] = ("HGETALL", parts(pid)["grants"])
        for p in provinces[pid]:
            questions |= _views(pid, p)
    got = await ask(redis, questions, atomic=True)
    found = await records(redis, {i for pid in pids for i in _named(got, pid, provinces[pid])},
                          binding_key)  # fmt: skip
    pairs = await ask(redis, {
        (pid, p, b): ("GET", Keys.pair(p, pid, b))
        for pid in pids for p in provinces[pid] for b in _beneficiaries(got, pid, p, found)
    })  # fmt: skip
    return [_person(pid, provinces[pid], got, found, pairs) for pid in pids if provinces[pid]]


_ID_LISTS = ("binder_all", "binder_active", "beneficiary_all", "payers")


def _views(pid: str, p: str) -> dict[Label, tuple[Any, ...]]:
    return {
        (pid, p, "binder_all"): ("ZRANGE", Keys.binder_all(p, pid), 0, -1),
        (pid, p, "binder_active"): ("SMEMBERS", Keys.binder_active(p, pid)),
        (pid, p, "beneficiary_all"): ("ZRANGE", Keys.beneficiary_all(p, pid), 0, -1),
        (pid, p, "payers"): ("LRANGE", Keys.payers(p, pid), 0, -1),
        (pid, p, "version"): ("GET", Keys.order_version(p, pid)),
        (pid, p, "pending"): ("ZSCORE", Keys.order_outbox(p), pid),
    }


def _named(got: dict[Label, Any], pid: str, provinces: list[str]) -> set[str]:
    """Every binding id one of his views names."""
    return {str(i) for p in provinces for part in _ID_LISTS for i in got[pid, p, part]}


def _beneficiaries(got: dict[Label, Any], pid: str, p: str, found: dict[str, Any]) -> set[str]:
    """Whom he has bound in province p: each has a pair key there while a binding is ACTIVE."""
    return {str((found.get(i) or {}).get("beneficiary_id")) for i in got[pid, p, "binder_all"]}


def _person(
    pid: str, provinces: list[str], got: dict[Label, Any], found: dict[str, Any],
    pairs: dict[Label, Any],
) -> PersonBundle:  # fmt: skip
    views = {
        p: ProvinceViews(
            p, list(got[pid, p, "binder_all"]), set(got[pid, p, "binder_active"]),
            {b: pairs[pid, p, b] for b in _beneficiaries(got, pid, p, found)},
            list(got[pid, p, "beneficiary_all"]), list(got[pid, p, "payers"]),
            int(got[pid, p, "version"] or 0), got[pid, p, "pending"] is not None,
        )
        for p in provinces
    }  # fmt: skip
    order, version = got[pid, "order"]
    grants = granted(pid, got[pid, "grants"])
    named = {i: found.get(i) for i in _named(got, pid, provinces)}
    return PersonBundle(pid, views, named, grants, order, int(version or 0))


async def read_records(redis: aioredis.Redis, keys: list[str]) -> list[RecordBundle]:
    """Each binding record, then whether both people's indexes and `where` sets list it."""
    ids = [k.rsplit(":", 1)[-1] for k in keys]
    ids = [i for i, k in zip(ids, keys, strict=True) if binding_key(i) == k]
    found = {i: rec for i, rec in (await records(redis, set(ids), binding_key)).items() if rec}
    questions: dict[Label, tuple[Any, ...]] = {}
    for i, rec in found.items():
        pb, pe = provinces_of(i)
        binder, beneficiary = str(rec.get("binder_id")), str(rec.get("beneficiary_id"))
        questions |= {
            (i, "binder_all"): ("ZSCORE", Keys.binder_all(pb, binder), i),
            (i, "beneficiary_all"): ("ZSCORE", Keys.beneficiary_all(pe, beneficiary), i),
            (i, "binder_where"): ("SISMEMBER", Keys.where(binder), pb),
            (i, "beneficiary_where"): ("SISMEMBER", Keys.where(beneficiary), pe),
        }
    got = await ask(redis, questions)
    return [
        RecordBundle(i, rec, got[i, "binder_all"] is not None,
                     got[i, "beneficiary_all"] is not None, bool(got[i, "binder_where"]),
                     bool(got[i, "beneficiary_where"]))
        for i, rec in found.items()
    ]  # fmt: skip
