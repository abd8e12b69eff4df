"""The audit's reader: a streamed, read-only pass over the Redis of record.

Keys are found with SCAN (a match pattern made with the stores' own key helpers, a type and a
count), never KEYS, and handed on in batches of `BATCH`; each batch is read with pipelines, the
keys of one subject inside one MULTI so that the checks see one moment of it. Nothing is
written: the commands are SCAN, TIME, OBJECT IDLETIME, PTTL and reads. Only one batch is in
memory at a time.

Under Redis Cluster (GONGJI_REDIS_MODE=cluster) SCAN walks every master, and a MULTI holds the
keys of one slot only: the keys of one slot are read in one MULTI (an account's keys share its
slot, so an account is still read at one moment), what spans slots (a person's views in each
province and his grants) in one MULTI per slot; the second reading of whatever looks broken
(run.py `_confirmed`) keeps a change made between two slots' reads from being reported.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Callable
from typing import Any, cast

import orjson
import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from services.account.domain import grant_fields
from services.account.store import account_key, account_keys, payment_key
from services.audit import checks
from services.audit.model import AccountBundle, Json, RequestRecord
from services.binding.domain import record_fields
from services.binding.store import Keys, provinces_of
from services.common.redisdb import clustered, get_many

BATCH = 256  # subjects per pipelined read
SCAN_COUNT = 1000  # SCAN's hint of keys looked at per call
ACCOUNTS, PAYMENTS = account_key("*"), payment_key("*")
# services.common.idempotency keys a request's record `<prefix>:req:<method>:<request_id>`; the
# prefixes are the account, binding and settlement servers' (`Requests(redis, prefix)`). One
# SCAN finds all three (each SCAN walks the whole keyspace); read_requests keeps only theirs.
REQUEST_PREFIXES = tuple(f"{prefix}:req:" for prefix in ("acct", "bind", "setl"))
REQUESTS = "*:req:*"
Label = tuple[Any, ...]  # names a command's reply in `ask`


async def batches(redis: aioredis.Redis, pattern: str, kind: str) -> AsyncIterator[list[str]]:
    """The names of the keys of Redis type `kind` that match `pattern`, in batches. SCAN may
    name a key twice while Redis resizes its table; the audit reports a violation once."""
    batch: list[str] = []
    async for key in redis.scan_iter(match=pattern, count=SCAN_COUNT, _type=kind):
        batch.append(str(key))
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


async def ask(
    redis: aioredis.Redis, questions: dict[Label, tuple[Any, ...]], atomic: bool = False,
    may_fail: str = "",
) -> dict[Label, Any]:  # fmt: skip
    """Read commands in one pipeline (in one MULTI when `atomic`), their replies by label. A
    command whose label ends in `may_fail` answers None when Redis refuses it; any other
    refusal (a key of the wrong type, a missing permission) stops the audit, naming it."""
    if not questions:
        return {}
    if atomic and clustered(redis):
        got = await _per_slot(cast(aioredis.RedisCluster, redis), questions)
    else:
        got = await _in_one(redis, questions, atomic)
    for label, reply in got.items():
        if isinstance(reply, ResponseError):
            if not may_fail or label[-1] != may_fail:
                raise ResponseError(f"{' '.join(map(str, questions[label]))}: {reply}")
            got[label] = None
    return got


async def _in_one(
    redis: aioredis.Redis, questions: dict[Label, tuple[Any, ...]], atomic: bool
) -> dict[Label, Any]:
    async with redis.pipeline(transaction=atomic) as pipe:
        for command in questions.values():
            pipe.execute_command(*command)
        replies = await pipe.execute(raise_on_error=False)
    return dict(zip(questions, replies, strict=True))


_CLUSTER_READS = 16  # MULTIs in flight at once under Redis Cluster


async def _per_slot(
    redis: aioredis.RedisCluster, questions: dict[Label, tuple[Any, ...]]
) -> dict[Label, Any]:
    """The questions of each slot in one MULTI of its own. A question without a key (TIME)
    goes with its subject's (the label's first part) first keyed question, and is asked of that
    node once, before the first of its MULTIs: the clock is read before the state it judges,
    never after, and each node is judged by its own."""
    slot_of: dict[Any, int] = {}
    for label, command in questions.items():
        if len(command) > 1:
            slot_of.setdefault(label[0], redis.keyslot(command[1]))
    groups: dict[int, dict[Label, tuple[Any, ...]]] = {}
    for label, command in questions.items():
        slot = redis.keyslot(command[1]) if len(command) > 1 else slot_of[label[0]]
        groups.setdefault(slot, {})[label] = command
    gate = asyncio.Semaphore(_CLUSTER_READS)
    asked: dict[tuple[str, tuple[Any, ...]], asyncio.Future[Any]] = {}

    def of_node(node: Any, command: tuple[Any, ...]) -> asyncio.Future[Any]:
        if (node.name, command) not in asked:
            reply = redis.execute_command(*command, target_nodes=node)
            asked[node.name, command] = asyncio.ensure_future(reply)
        return asked[node.name, command]

    async def read(group: dict[Label, tuple[Any, ...]]) -> dict[Label, Any]:
        keyless = {label: c for label, c in group.items() if len(c) == 1}
        keyed = {label: c for label, c in group.items() if len(c) > 1}
        async with gate:
            node = redis.get_node_from_key(str(next(iter(keyed.values()))[1]))
            got = {label: await of_node(node, c) for label, c in keyless.items()}
            return got | await _in_one(cast(aioredis.Redis, redis), keyed, atomic=True)

    answers: dict[Label, Any] = {}
    for got in await asyncio.gather(*(read(g) for g in groups.values())):
        answers |= got
    return answers


def inner(key: str, pattern: str) -> str:
    """What the `*` of a one-wildcard pattern stands for in a key that matched it."""
    head, tail = pattern.split("*")
    return key[len(head) : len(key) - len(tail)]


def obj(raw: Any) -> Json:
    """A stored JSON object, or {} for a value that is none (the check names what is missing)."""
    try:
        value = orjson.loads(raw) if isinstance(raw, str | bytes) else {}
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def granted(binder: str, kept: dict[str, Any]) -> dict[str, Json]:
    """A binder's grants (HGETALL of his grants), each by name (services.account.domain)."""
    found = {}
    for binding_id, raw in kept.items():
        try:
            found[binding_id] = grant_fields(binder, binding_id, orjson.loads(raw))
        except orjson.JSONDecodeError:
            found[binding_id] = {}
    return found


def parts(pid: str) -> dict[str, str]:
    """An account's keys by part name (`ledger`, `eidx`, `holds`, `hexp`, ...), as
    store.account_keys and lib.lua's PARTS lay them out."""
    head = account_key(pid)
    return {key[len(head) + 1 :]: key for key in account_keys(pid)[1:]}


def binding_key(binding_id: str) -> str:
    """A binding's record key, or '' for an id the binding service never makes."""
    try:
        provinces_of(binding_id)
    except ValueError:
        return ""
    return Keys.record(binding_id)


def binding_record(binding_id: str, raw: Any) -> Json:
    """A binding record by name, whichever form it is kept in ({} for one unreadable)."""
    try:
        kept = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return {}
    return record_fields(binding_id, kept) if isinstance(kept, list | dict) else {}


async def records(
    redis: aioredis.Redis, ids: set[str], key_of: Callable[[str], str],
    parse: Callable[[str, Any], Json] = lambda _, raw: obj(raw),
) -> dict[str, Json | None]:  # fmt: skip
    """JSON records by id, in one MGET; None: no record (or an id no key holds)."""
    keyed = {i: key_of(i) for i in sorted(ids)}
    wanted = [i for i, k in keyed.items() if k]
    raws = await get_many(redis, [keyed[i] for i in wanted])
    found: dict[str, Json | None] = dict.fromkeys(keyed)
    found |= {
        i: parse(i, raw) if raw is not None else None for i, raw in zip(wanted, raws, strict=True)
    }
    return found


# Parts most accounts never have (store.account_keys): refunds, grants, the aid quotas one funds,
# and the holds kept from before holds were retired.
_SIDE_PARTS = ("holds", "refunds", "grants", "funds")


async def read_accounts(redis: aioredis.Redis, keys: list[str]) -> list[AccountBundle]:
    """Each account in one MULTI with the server's clock: its hash, ledger and entry index, and
    whether it has any of the parts most accounts never get; one that has is read again whole
    in a second MULTI. Then the payment and binding records its debits and grants name."""
    pids = [p for p in (inner(k, ACCOUNTS) for k in keys) if "{" not in p and "}" not in p]
    got = await ask(redis, _account_questions(pids, whole=False), atomic=True)
    busy = [pid for pid in pids if got[pid, "parts"]]
    got |= await ask(redis, _account_questions(busy, whole=True), atomic=True) if busy else {}
    found = [_account(pid, got) for pid in pids if got[pid, "fields"]]  # else gone since SCAN
    return await _with_named_records(redis, found)


def _account_questions(pids: list[str], whole: bool) -> dict[Label, tuple[Any, ...]]:
    questions: dict[Label, tuple[Any, ...]] = {}
    for pid in pids:
        at = parts(pid)
        questions[pid, "now"] = ("TIME",)
        questions[pid, "fields"] = ("HGETALL", account_key(pid))
        questions[pid, "ledger"] = ("LRANGE", at["ledger"], 0, -1)
        questions[pid, "eidx"] = ("HGETALL", at["eidx"])
        if not whole:
            questions[pid, "parts"] = ("EXISTS", *(at[part] for part in _SIDE_PARTS))
            continue
        for part in _SIDE_PARTS:
            questions[pid, part] = ("HGETALL", at[part])
    return questions


def _account(pid: str, got: dict[Label, Any]) -> AccountBundle:
    whole = bool(got[pid, "parts"])
    seconds, micros = got[pid, "now"]
    holds, refunds, grants, funds = (
        (got[pid, part] for part in _SIDE_PARTS) if whole else ({}, {}, {}, {})
    )
    return AccountBundle(
        pid, got[pid, "fields"], checks.parsed_entries([obj(e) for e in got[pid, "ledger"]]),
        got[pid, "eidx"], {i: obj(h) for i, h in holds.items()},
        {i: obj(r) for i, r in refunds.items()}, granted(pid, grants),
        int(seconds) * 1000 + int(micros) // 1000, {i: _array(q) for i, q in funds.items()},
    )  # fmt: skip


def _array(raw: Any) -> Any:
    """A quota as its funder's account keeps it (a JSON array), or None if unreadable."""
    try:
        kept = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return kept if isinstance(kept, list) else None


async def _with_named_records(
    redis: aioredis.Redis, found: list[AccountBundle]
) -> list[AccountBundle]:
    """The payment records the accounts' debits (and locks) name and the binding records their
    active grants name, each read once per batch; and which of those payments are still being
    made in steps (their record is the plan's journal: stepwise.py, Redis Cluster)."""
    refs = {a.person_id: checks.payment_references(a) for a in found}
    grants = {a.person_id: checks.granted_bindings(a) for a in found}
    payments = await records(redis, set().union(*refs.values()), payment_key)
    making = {r for r, rec in payments.items() if rec and rec.get("phase") == "paying"}
    bindings = await records(redis, set().union(*grants.values()), binding_key, binding_record)
    return [
        dataclasses.replace(
            a, payments={r: payments[r] for r in refs[a.person_id]},
            bindings={b: bindings[b] for b in grants[a.person_id]},
            in_flight=frozenset(refs[a.person_id] & making),
        ) if refs[a.person_id] or grants[a.person_id] else a
        for a in found
    ]  # fmt: skip


async def read_requests(redis: aioredis.Redis, keys: list[str]) -> list[RequestRecord]:
    """Each request record with its lease left and its idle time, read before the GET that
    would reset it (None where Redis tracks no idle time: an LFU eviction policy)."""
    keys = [key for key in keys if key.startswith(REQUEST_PREFIXES)]
    questions: dict[Label, tuple[Any, ...]] = {}
    for key in keys:
        questions |= {(key, "idle"): ("OBJECT", "IDLETIME", key), (key, "ttl"): ("PTTL", key),
                      (key, "value"): ("GET", key)}  # fmt: skip
    got = await ask(redis, questions, may_fail="idle")
    return [
        RequestRecord(key, obj(got[key, "value"]), int(got[key, "ttl"]), got[key, "idle"])
        for key in keys
    ]  # fmt: skip
