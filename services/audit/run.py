"""`audit()`: a read-only walk over the Redis of record that checks every invariant, and
`render()`: the report for people. What to do with the result (the exit code) is the caller's."""

from __future__ import annotations

import dataclasses
import os
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import redis.asyncio as aioredis

from services.account.store import account_key, payment_key
from services.audit import checks
from services.audit.model import RULES, Violation
from services.audit.scan import (
    ACCOUNTS,
    PAYMENTS,
    REQUESTS,
    batches,
    read_accounts,
    read_requests,
)
from services.audit.scan_bindings import PERSONS, RECORDS, read_persons, read_records
from services.audit.scan_payments import read_payments
from services.binding.store import Keys
from services.common import policy as policies
from services.common.redisdb import connect

Progress = Callable[[str, int], None]


@dataclasses.dataclass(frozen=True)
class Report:
    counts: dict[str, int]  # what was read, by kind
    violations: list[Violation]  # in the order found, each once
    elapsed_s: float

    @property
    def ok(self) -> bool:
        return not self.violations


@dataclasses.dataclass(frozen=True)
class _Pass:
    """One kind of subject: where SCAN finds it, how a batch is read and checked, what it adds
    to the counts, and how to find a subject's key again to confirm what was found."""

    kind: str
    pattern: str  # SCAN MATCH
    redis_type: str
    read: Callable[[aioredis.Redis, list[str]], Awaitable[Sequence[Any]]]
    check: Callable[[Any], list[Violation]]
    key_of: Callable[[Any], str] | None = None  # None: not confirmed (see _confirmed)
    tally: Callable[[Any], dict[str, int]] = lambda _: {}


def _passes(policy: policies.Policy, recovery_after_ms: int) -> list[_Pass]:
    return [
        _Pass("accounts", ACCOUNTS, "hash", read_accounts,
              lambda a: checks.check_account(a, recovery_after_ms),
              lambda a: account_key(a.person_id), lambda a: {"ledger entries": len(a.ledger)}),
        _Pass("payments", PAYMENTS, "string", read_payments,
              lambda p: checks.check_payment(p, recovery_after_ms),
              lambda p: payment_key(p.payment_id)),
        _Pass("persons with bindings", PERSONS, "set", read_persons,
              lambda p: checks.check_person(p, policy), lambda p: Keys.where(p.person_id)),
        _Pass("binding records", RECORDS, "string", read_records, checks.check_record,
              lambda r: Keys.record(r.binding_id)),
        _Pass("request records", REQUESTS, "string", read_requests,
              lambda r: checks.check_request(r, recovery_after_ms)),
    ]  # fmt: skip


async def audit(
    redis_url: str, progress: Progress | None = None, recovery_after_ms: int = 30_000,
    policy: policies.Policy | None = None, redis_mode: str = "single",
) -> Report:  # fmt: skip
    """Check every invariant over the Redis at `redis_url`, reading only. `progress(kind, n)`
    is told after each batch how many subjects of that kind have been read; `policy` is the
    province policy bindings are checked against (default: GONGJI_POLICY_FILE's, as the
    services load it); `redis_mode="cluster"`: `redis_url` names a node of a Redis Cluster."""
    started = time.monotonic()
    policy = policy or policies.load(os.environ.get("GONGJI_POLICY_FILE", ""))
    redis = connect(redis_url, mode=redis_mode)
    counts: Counter[str] = Counter()
    found: dict[Violation, None] = {}  # SCAN may name a key twice: each violation once
    try:
        for one in _passes(policy, recovery_after_ms):
            counts[one.kind] += 0
            async for keys in batches(redis, one.pattern, one.redis_type):
                subjects = await one.read(redis, keys)
                counts[one.kind] += len(subjects)
                for s in subjects:
                    counts.update(one.tally(s))
                found |= dict.fromkeys(await _confirmed(redis, one, subjects))
                if progress:
                    progress(one.kind, counts[one.kind])
    finally:
        await redis.aclose()
    return Report(dict(counts), list(found), time.monotonic() - started)


async def _confirmed(redis: aioredis.Redis, one: _Pass, subjects: Sequence[Any]) -> list[Violation]:
    """The violations of a batch that a second reading of their subjects shows again. The
    services change a subject in one script, but some facts span two steps of a service
    (a grant and its binding, a binding and its pushed order): read while one runs, a subject
    may look broken for a moment. A fact that two readings show is reported from the second."""
    first = {id(s): one.check(s) for s in subjects}
    flagged = [s for s in subjects if first[id(s)]]
    if not flagged or one.key_of is None:
        return [v for s in subjects for v in first[id(s)]]
    seen = {(v.rule, v.subject) for s in flagged for v in first[id(s)]}
    again = await one.read(redis, [one.key_of(s) for s in flagged])
    return [v for s in again for v in one.check(s) if (v.rule, v.subject) in seen]


def render(report: Report) -> str:
    """Counts first, then each violation grouped by rule, or that all invariants hold."""
    read = ", ".join(f"{n:,} {kind}" for kind, n in report.counts.items())
    lines = [f"Read {read} in {report.elapsed_s:.2f} s."]
    if report.ok:
        return "\n".join([*lines, "All invariants hold."])
    by_rule: dict[str, list[Violation]] = {}
    for v in report.violations:
        by_rule.setdefault(v.rule, []).append(v)
    lines.append(f"{_many(len(report.violations), 'violation')} of {_many(len(by_rule), 'rule')}:")
    for rule in sorted(by_rule, key=lambda r: (RULES[r][0], r)):
        lines += ["", f"{rule}: {RULES[rule][1]} ({_many(len(by_rule[rule]), 'violation')})"]
        lines += [f"  {v.subject}: {v.detail}" for v in by_rule[rule]]
    return "\n".join(lines)


def _many(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
