"""Every refusal of every Redis script changes nothing (DESIGN "Atomic steps": Redis never rolls
a script back, so a script checks everything before its first write).

The scripts run against a Redis database of their own; before and after each refused call the
whole database is dumped and compared, key by key. The accounts the refusals fall on hold a
hold past its lifetime, which every script counts as expired but only writes down after its
last refusal. Each account script's refusal reasons are read from its Lua (and from the shared
helpers it calls), and the test fails if one has no case here."""

from __future__ import annotations

import json
import pathlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import redis.asyncio as aioredis

from services.account.domain import Source
from services.account.locks import Locks, lock_key
from services.account.stepwise import Stepwise
from services.account.store import (
    AccountStore,
    account_key,
    account_keys,
    cancel_journal_key,
    journal_key,
    marker_key,
    payment_key,
    script_names,
)
from services.binding.domain import Binding
from services.binding.store import BindingStore, new_binding_id
from services.common.enums import AccountStatus, BindingStatus, EntryKind, StopReason
from services.common.errors import DomainError
from services.common.idempotency import Requests
from tests.support import new_pid

LUA = pathlib.Path("services/account/lua")
Call = Callable[[], Awaitable[object]]


@pytest.fixture
async def db(redis_url: str) -> AsyncIterator[tuple[aioredis.Redis, aioredis.Redis]]:
    """A database of its own (15): no background work of the test servers writes there."""
    url = redis_url.rsplit("/", 1)[0] + "/15"
    text, raw = (aioredis.Redis.from_url(url, decode_responses=True),
                 aioredis.Redis.from_url(url))  # fmt: skip
    await raw.flushdb()
    yield text, raw
    await raw.flushdb()
    await text.aclose()
    await raw.aclose()


async def snapshot(raw: aioredis.Redis) -> dict[bytes, tuple[bytes | None, bool]]:
    """Every key's serialized value, and whether it has a lifetime."""
    keys = [k async for k in raw.scan_iter(count=1000)]
    return {k: (await raw.dump(k), await raw.pttl(k) > 0) for k in sorted(keys)}


async def refused(raw: aioredis.Redis, call: Call, reason: str, hints: bytes = b"\0") -> None:
    """`hints`: keys under this prefix may be added, not changed (a binding's people's
    provinces, recorded before its script: BindingStore.create)."""
    before = await snapshot(raw)
    with pytest.raises(DomainError) as info:
        await call()
    assert info.value.reason == reason
    after = await snapshot(raw)
    added = {k for k in after.keys() - before.keys() if k.startswith(hints)}
    assert {k: v for k, v in after.items() if k not in added} == before, (
        f"{reason} changed the database"
    )


async def unchanged(raw: aioredis.Redis, call: Call) -> object:
    """For scripts that answer a refusal with a value rather than an error."""
    before = await snapshot(raw)
    result = await call()
    assert await snapshot(raw) == before
    return result


# -- account scripts ---------------------------------------------------------------------------
_HELPERS = {  # the shared helpers of lib.lua and the refusals each may answer
    "why_not_pay": {"ACCOUNT_NOT_FOUND", "NO_PERSONAL_ACCOUNT", "ACCOUNT_CLOSED",
                    "ACCOUNT_SUSPENDED", "INSURANCE_STOPPED"},
    "refuse_payment": {"ACCOUNT_NOT_FOUND", "NO_PERSONAL_ACCOUNT", "ACCOUNT_CLOSED",
                       "ACCOUNT_SUSPENDED", "INSURANCE_STOPPED"},
    "refuse_fence": {"STALE_FENCING_TOKEN"},
    "replay(": {"IDEMPOTENCY_CONFLICT"},
    "entry_by_id": {"INTERNAL"},
    "entry_answer": {"INTERNAL"},
    "made_before(": {"SETTLEMENT_REVERSED", "IDEMPOTENCY_CONFLICT"},
    "refuse_patient(": {"ACCOUNT_NOT_FOUND", "BENEFICIARY_NOT_RESIDENT", "PREMIUM_ALREADY_PAID",
                        "ACCOUNT_SUSPENDED", "ACCOUNT_CLOSED", "INSURANCE_STOPPED"},
    "source_take(": {"NOT_BOUND", "ACCOUNT_NOT_FOUND", "NO_PERSONAL_ACCOUNT", "ACCOUNT_CLOSED",
                     "ACCOUNT_SUSPENDED", "INSURANCE_STOPPED", "INSUFFICIENT_FUNDS"},
    "cancel_answer(": {"SETTLEMENT_NOT_FOUND", "ALREADY_CANCELLED"},
}  # fmt: skip


def refusals_in_lua() -> set[tuple[str, str]]:
    found = set()
    for name in script_names():
        body = (LUA / f"{name}.lua").read_text()
        reasons = set(re.findall(r"fail\('([A-Z_]+)'", body))
        reasons |= set(re.findall(r"return '([A-Z_]+)', '", body))
        for helper, more in _HELPERS.items():
            if helper in body:
                reasons |= more
        found |= {(name, r) for r in reasons}
    return found


class World:
    """Accounts in every state a refusal needs, each with a hold past its lifetime."""

    def __init__(self, store: AccountStore) -> None:
        self.s = store
        self.e, self.r, self.c, self.sus, self.f, self.p, self.st = (new_pid() for _ in range(7))

    async def make(self) -> World:
        s = self.s
        for pid in (self.e, self.c, self.sus, self.f, self.p, self.st):
            await s.open(pid, "甲", 1, "430102", "", "")
        await s.open(self.r, "乙", 2, "430102", "", "")
        for pid in (self.e, self.c, self.sus, self.f, self.st):
            await s.credit(pid, 10_000, EntryKind.ALLOCATION, "m", "", "")
        await s.grant(self.st, self.r, "B-str", "2000-01-01", "")
        await s.grant(self.e, self.p, "B-e", "2000-01-01", "")
        await s.grant(self.e, self.r, "B-er", "2000-01-01", "")
        await s.grant(self.c, self.r, "B-cr", "2000-01-01", "")
        await s.grant(self.sus, self.r, "B-sr", "2000-01-01", "")
        paid = await s.pay("PAID1", EntryKind.SETTLEMENT, self.p, [Source(self.e, "B-e")], 1_000,
                           "2026-01-01", False, "fp")  # fmt: skip
        self.debit = paid.shares[0].entry_id
        await s.pay("PAID2", EntryKind.SETTLEMENT, self.p, [Source(self.e, "B-e")], 1_000,
                    "2026-01-01", False, "fp")  # fmt: skip
        await s.cancel_payment("PAID2", "x", "cancel-1", False)
        premium = await s.pay("PREMIUM1", EntryKind.PREMIUM, self.r, [Source(self.e, "B-er")],
                              100, "2026-01-01", False, "fp", premium_year=2026)  # fmt: skip
        self.premium_debit = premium.shares[0].entry_id
        self.credit_entry = (await s.credit(self.e, 1, EntryKind.ADJUSTMENT, "m", "", "")).entry_id
        await s.refund(self.e, "rf-1", self.debit, "cancel")
        await s.purchase(self.f, 100, 40, "PICC-HN", "pol-1", 7, 2026, True, 1, "", "")
        await s.purchase(self.f, 100, 40, "PICC-HN", "pol-2", 7, 2026, True, 1, "", "")
        await s.cancel_policy(self.f, "pol-2", "", "")
        await s.credit(self.e, 5, EntryKind.ADJUSTMENT, "m", "fp-A", "Credit:r1")
        await s.contribute(self.e, "2025-01", 800_000, 16_000, 48_000, 1, "", 200, "", "")
        await s.place_hold(self.e, "h-live", 50, 1, EntryKind.SETTLEMENT, "ref")
        await s.place_hold(self.e, "h-done", 50, 1, EntryKind.SETTLEMENT, "ref")
        await s.commit_hold(self.e, "h-done")
        await s.void_hold(self.e, "h-void")
        await s.reverse_payment("REVERSED1")
        await s.call(
            "pay_begin", [payment_key("JOURNAL1"), journal_key("JOURNAL1")], ["fp", '{"fp": "fp"}']
        )  # a payment in steps, in progress
        for pid in (self.c, self.st):
            await s.stop(pid, StopReason.DEATH, "", "")
        await s.close(
            self.c, AccountStatus.CLOSED, EntryKind.WITHDRAWAL, "heir", 1, StopReason.DEATH, "", ""
        )
        for pid in (self.e, self.sus, self.f):
            await s.place_hold(pid, "h-due", 10, 7, EntryKind.SETTLEMENT, "ref")
        await s.set_status(self.sus, AccountStatus.SUSPENDED, "fraud", "", "")
        for pid in (self.e, self.sus, self.f):  # its lifetime is over, and nothing wrote that yet
            await s.redis.zadd(account_keys(pid)[4], {"h-due": 1})
        return self


def account_cases(w: World) -> list[tuple[str, str, Call]]:
    s, e, r, c, sus, f, p, st = w.s, w.e, w.r, w.c, w.sus, w.f, w.p, w.st

    def month(pid: str, which: str, base: int = 800_000, bp: int = 200, fp: str = "",
              marker: str = "") -> Awaitable[object]:  # fmt: skip
        return s.contribute(pid, which, base, 16_000, 48_000, 1, "", bp, fp, marker)

    def buy(pid: str, amount: int, policy_no: str, fence: int, fp: str = "", marker: str = "",
            partner: bool = True) -> Awaitable[object]:  # fmt: skip
        return s.purchase(pid, amount, 40, "I", policy_no, fence, 2026, partner, 1, fp, marker)

    nobody = new_pid()

    def pay(pid: str, kind: int, patient: str, sources: list[Source], amount: int = 100,
            fp: str = "fp", year: int = 2027) -> Call:  # fmt: skip
        return lambda: s.pay(pid, kind, patient, sources, amount, "2026-01-01", False, fp,
                             premium_year=year)  # fmt: skip

    stepwise = Stepwise(s, 30_000)

    def step(pid: str, kind: int, patient: str, sources: list[Source], amount: int = 100,
             fp: str = "fp", year: int = 2027) -> Call:  # fmt: skip
        return lambda: stepwise.pay(pid, kind, patient, sources, amount, "2026-01-01", False,
                                    fp, premium_year=year)  # fmt: skip

    def share(source: str, binding_id: str, patient: str, amount: int = 100) -> Call:
        keys = [account_key(source), marker_key(source, "pay:S1")]
        args = ["", "S1", 1, EntryKind.PREMIUM, amount, patient, binding_id, "2026-01-01", 0, 0]
        return lambda: s.call("pay_share", keys, args)

    premium = EntryKind.PREMIUM
    hold = EntryKind.SETTLEMENT
    return [
        ("pay_begin", "SETTLEMENT_REVERSED", step("REVERSED1", hold, p, [Source(p)])),
        ("pay_begin", "IDEMPOTENCY_CONFLICT",
         step("PAID1", hold, p, [Source(e, "B-e")], fp="other")),
        ("pay_begin", "IDEMPOTENCY_CONFLICT",  # a payment in progress under the key
         step("JOURNAL1", hold, p, [Source(e, "B-e")], fp="other")),
        ("pay_patient", "ACCOUNT_NOT_FOUND", step("N1", hold, nobody, [Source(e, "B-e")])),
        ("pay_patient", "ACCOUNT_SUSPENDED", step("N2", hold, sus, [Source(e, "B-e")])),
        ("pay_patient", "ACCOUNT_CLOSED", step("N3", hold, c, [Source(e, "B-e")])),
        ("pay_patient", "BENEFICIARY_NOT_RESIDENT", step("N5", premium, p, [Source(e, "B-e")])),
        ("pay_patient", "PREMIUM_ALREADY_PAID",
         step("N11", premium, r, [Source(e, "B-er")], year=2026)),
        ("pay_share", "NOT_BOUND", share(f, "B-e", r)),
        ("pay_share", "ACCOUNT_NOT_FOUND", share(nobody, "B-e", r)),
        ("pay_share", "INSUFFICIENT_FUNDS", share(e, "B-er", r, 10**9)),
        ("pay_share", "NO_PERSONAL_ACCOUNT", share(r, "", r)),
        ("pay_share", "ACCOUNT_CLOSED", share(c, "B-cr", r)),
        ("pay_share", "ACCOUNT_SUSPENDED", share(sus, "B-sr", r)),
        # the whole premium given up: its claim of the year and its journal taken back
        ("pay_share", "INSUFFICIENT_FUNDS", step("N12", premium, r, [Source(e, "B-er")], 10**9)),
        ("pay_finish", "INTERNAL",
         lambda: s.call("pay_finish", [payment_key("N13"), journal_key("N13")], ["", "[]"])),
        ("cancel_begin", "SETTLEMENT_NOT_FOUND", lambda: stepwise.cancel("nope", "x", "c", False)),
        ("cancel_begin", "ALREADY_CANCELLED", lambda: stepwise.cancel("PAID2", "x", "c2", False)),
        ("cancel_finish", "INTERNAL",
         lambda: s.call("cancel_finish", [payment_key("PAID1"), cancel_journal_key("PAID1")],
                        [""])),
        ("reverse_payment", "SETTLEMENT_IN_PROGRESS", lambda: s.reverse_payment("JOURNAL1")),
        ("credit", "ACCOUNT_NOT_FOUND", lambda: s.credit(nobody, 1, 1, "m", "", "")),
        ("credit", "NO_PERSONAL_ACCOUNT", lambda: s.credit(r, 1, 1, "m", "", "")),
        ("credit", "ACCOUNT_CLOSED", lambda: s.credit(c, 1, 1, "m", "", "")),
        ("credit", "INVALID_AMOUNT", lambda: s.credit(e, 10**15, 1, "m", "", "")),
        ("credit", "IDEMPOTENCY_CONFLICT", lambda: s.credit(e, 6, 2, "m", "fp-B", "Credit:r1")),
        ("contribute", "ACCOUNT_NOT_FOUND", lambda: month(nobody, "2025-02")),
        ("contribute", "NOT_EMPLOYEE", lambda: month(r, "2025-02")),
        ("contribute", "ACCOUNT_CLOSED", lambda: month(c, "2025-02")),
        ("contribute", "CONTRIBUTION_EXISTS", lambda: month(e, "2025-01", base=900_000)),
        ("contribute", "INVALID_AMOUNT", lambda: month(e, "2025-03", base=10**15, bp=10_000)),
        ("contribute", "IDEMPOTENCY_CONFLICT",
         lambda: month(e, "2025-04", fp="fp-B", marker="Credit:r1")),
        ("get", "ACCOUNT_NOT_FOUND", lambda: s.get(nobody)),
        ("open", "ACCOUNT_EXISTS", lambda: s.open(e, "甲", 1, "430102", "", "")),
        ("open", "IDEMPOTENCY_CONFLICT", lambda: s.open(e, "丙", 1, "430102", "fp-B", "Credit:r1")),
        ("set_status", "ACCOUNT_NOT_FOUND", lambda: s.set_status(nobody, 2, "x", "", "")),
        ("set_status", "ACCOUNT_CLOSED", lambda: s.set_status(c, 2, "x", "", "")),
        ("set_status", "IDEMPOTENCY_CONFLICT",
         lambda: s.set_status(e, 2, "x", "fp-B", "Credit:r1")),
        ("move", "ACCOUNT_NOT_FOUND", lambda: s.move(nobody, "430103", "", "")),
        ("move", "ACCOUNT_CLOSED", lambda: s.move(c, "430103", "", "")),
        ("move", "INVALID_REGION_CODE", lambda: s.move(e, "430102", "", "")),
        ("move", "IDEMPOTENCY_CONFLICT", lambda: s.move(e, "430103", "fp-B", "Credit:r1")),
        ("close", "ACCOUNT_NOT_FOUND", lambda: s.close(nobody, 3, 8, "x", 9, 1, "", "")),
        ("close", "NO_PERSONAL_ACCOUNT", lambda: s.close(r, 3, 8, "x", 9, 1, "", "")),
        ("close", "ACCOUNT_CLOSED", lambda: s.close(c, 3, 8, "x", 9, 1, "", "")),
        ("close", "INSURANCE_NOT_STOPPED", lambda: s.close(f, 3, 8, "x", 9, 1, "", "")),
        ("close", "WITHDRAWAL_NOT_ALLOWED", lambda: s.close(st, 3, 8, "x", 9, 2, "", "")),
        ("close", "OPEN_HOLDS", lambda: s.close(e, 4, 9, "x", 9, None, "", "")),
        ("close", "STALE_FENCING_TOKEN", lambda: s.close(f, 4, 9, "x", 3, None, "", "")),
        ("close", "IDEMPOTENCY_CONFLICT",
         lambda: s.close(e, 3, 8, "x", 9, 1, "fp-B", "Credit:r1")),
        ("stop", "ACCOUNT_NOT_FOUND", lambda: s.stop(nobody, 1, "", "")),
        ("stop", "ACCOUNT_CLOSED", lambda: s.stop(c, 2, "", "")),
        ("stop", "NO_PERSONAL_ACCOUNT", lambda: s.stop(r, 1, "", "")),
        ("stop", "INSURANCE_STOPPED", lambda: s.stop(st, 2, "", "")),
        ("stop", "IDEMPOTENCY_CONFLICT", lambda: s.stop(e, 1, "fp-B", "Credit:r1")),
        ("change_type", "ACCOUNT_NOT_FOUND", lambda: s.change_type(nobody, 2, "", "")),
        ("change_type", "ACCOUNT_CLOSED", lambda: s.change_type(c, 2, "", "")),
        ("change_type", "INSURANCE_STOPPED", lambda: s.change_type(st, 2, "", "")),
        ("change_type", "IDEMPOTENCY_CONFLICT",
         lambda: s.change_type(e, 2, "fp-B", "Credit:r1")),
        ("contribute", "INSURANCE_STOPPED", lambda: month(st, "2025-02")),
        ("purchase", "INSURANCE_STOPPED", lambda: buy(st, 1, "x", 9)),
        ("place_hold", "INSURANCE_STOPPED", lambda: s.place_hold(st, "h", 1, 9, hold, "x")),
        ("pay", "INSURANCE_STOPPED", pay("N14", hold, st, [Source(st)])),
        ("pay", "INSURANCE_STOPPED", pay("N15", EntryKind.PREMIUM, r, [Source(st, "B-str")])),
        ("pay_patient", "INSURANCE_STOPPED", step("N16", hold, st, [Source(st)])),
        ("pay_share", "INSURANCE_STOPPED", share(st, "B-str", r)),
        ("purchase", "ACCOUNT_NOT_FOUND", lambda: buy(nobody, 1, "x", 9)),
        ("purchase", "NO_PERSONAL_ACCOUNT", lambda: buy(r, 1, "x", 9)),
        ("purchase", "ACCOUNT_CLOSED", lambda: buy(c, 1, "x", 9)),
        ("purchase", "ACCOUNT_SUSPENDED", lambda: buy(sus, 1, "x", 9)),
        ("purchase", "STALE_FENCING_TOKEN", lambda: buy(f, 1, "x", 3)),
        ("purchase", "INSURER_NOT_PARTNER",
         lambda: buy(f, 1, "x", 9, partner=False)),
        ("purchase", "POLICY_NO_IN_USE", lambda: buy(f, 1, "pol-1", 9)),
        ("purchase", "COMMERCIAL_LIMIT_EXCEEDED",
         lambda: buy(e, 90_000, "x", 9)),
        ("purchase", "IDEMPOTENCY_CONFLICT",
         lambda: buy(e, 1, "x", 9, "fp-B", "Credit:r1")),
        ("cancel_policy", "ACCOUNT_NOT_FOUND", lambda: s.cancel_policy(nobody, "pol-1", "", "")),
        ("cancel_policy", "POLICY_NOT_FOUND", lambda: s.cancel_policy(f, "nope", "", "")),
        ("cancel_policy", "ALREADY_CANCELLED", lambda: s.cancel_policy(f, "pol-2", "", "")),
        ("cancel_policy", "IDEMPOTENCY_CONFLICT",
         lambda: s.cancel_policy(e, "pol-1", "fp-B", "Credit:r1")),
        ("refund", "ACCOUNT_NOT_FOUND", lambda: s.refund(nobody, "rf", w.debit, "x")),
        ("refund", "ALREADY_CANCELLED", lambda: s.refund(e, "rf-2", w.debit, "x")),
        ("refund", "ENTRY_NOT_FOUND", lambda: s.refund(e, "rf-3", "e-nope", "x")),
        ("refund", "INVALID_ARGUMENT", lambda: s.refund(e, "rf-4", w.credit_entry, "x")),
        ("place_hold", "ACCOUNT_NOT_FOUND", lambda: s.place_hold(nobody, "h", 1, 9, hold, "x")),
        ("place_hold", "HOLD_NOT_PLACED", lambda: s.place_hold(e, "h-void", 1, 9, hold, "x")),
        ("place_hold", "IDEMPOTENCY_CONFLICT",
         lambda: s.place_hold(e, "h-live", 51, 9, hold, "ref")),
        ("place_hold", "INSUFFICIENT_FUNDS", lambda: s.place_hold(e, "h", 10**9, 9, hold, "x")),
        ("place_hold", "NO_PERSONAL_ACCOUNT", lambda: s.place_hold(r, "h", 1, 9, hold, "x")),
        ("place_hold", "ACCOUNT_CLOSED", lambda: s.place_hold(c, "h", 1, 9, hold, "x")),
        ("place_hold", "ACCOUNT_SUSPENDED", lambda: s.place_hold(sus, "h", 1, 9, hold, "x")),
        ("place_hold", "STALE_FENCING_TOKEN", lambda: s.place_hold(f, "h", 1, 3, hold, "x")),
        ("commit_hold", "ACCOUNT_NOT_FOUND", lambda: s.commit_hold(nobody, "h-live")),
        ("commit_hold", "HOLD_NOT_PLACED", lambda: s.commit_hold(e, "h-due")),
        ("void_hold", "ACCOUNT_NOT_FOUND", lambda: s.void_hold(nobody, "h-live")),
        ("void_hold", "HOLD_NOT_PLACED", lambda: s.void_hold(e, "h-done")),
        ("pay", "SETTLEMENT_REVERSED", pay("REVERSED1", hold, p, [Source(p)])),
        ("pay", "IDEMPOTENCY_CONFLICT", pay("PAID1", hold, p, [Source(e, "B-e")], fp="other")),
        ("pay", "ACCOUNT_NOT_FOUND", pay("N1", hold, nobody, [Source(e, "B-e")])),
        ("pay", "ACCOUNT_SUSPENDED", pay("N2", hold, sus, [Source(e, "B-e")])),
        ("pay", "ACCOUNT_CLOSED", pay("N3", hold, c, [Source(e, "B-e")])),
        ("pay", "INVALID_ARGUMENT", pay("N4", hold, p, [Source(e, "B-e"), Source(e, "B-e")])),
        ("pay", "BENEFICIARY_NOT_RESIDENT", pay("N5", EntryKind.PREMIUM, p, [Source(e, "B-e")])),
        ("pay", "NOT_BOUND", pay("N6", EntryKind.PREMIUM, r, [Source(f, "B-e")])),
        ("pay", "INSUFFICIENT_FUNDS", pay("N7", EntryKind.PREMIUM, r, [Source(e, "B-er")], 10**9)),
        ("pay", "NO_PERSONAL_ACCOUNT", pay("N8", EntryKind.PREMIUM, r, [Source(r)])),
        ("pay", "ACCOUNT_CLOSED", pay("N9", EntryKind.PREMIUM, r, [Source(c, "B-cr")])),
        ("pay", "ACCOUNT_SUSPENDED", pay("N10", EntryKind.PREMIUM, r, [Source(sus, "B-sr")])),
        ("pay", "PREMIUM_ALREADY_PAID",
         pay("N11", EntryKind.PREMIUM, r, [Source(e, "B-er")], year=2026)),
        ("cancel_payment", "SETTLEMENT_NOT_FOUND",
         lambda: s.cancel_payment("nope", "x", "c", False)),
        ("cancel_payment", "SETTLEMENT_NOT_FOUND",
         lambda: s.cancel_payment("PREMIUM1", "x", "c", False)),
        ("cancel_payment", "ALREADY_CANCELLED",
         lambda: s.cancel_payment("PAID2", "x", "c2", False)),
        ("cancel_payment", "INVALID_ARGUMENT",  # the accounts given are not the payment's
         lambda: s.call("cancel_payment", [payment_key("PAID1"), account_key(f)],
                         ["", "", "c", 0])),
        ("grant", "ACCOUNT_NOT_FOUND", lambda: s.grant(nobody, p, "B-x", "2026-01-01", "")),
        ("grant", "IDEMPOTENCY_CONFLICT", lambda: s.grant(e, r, "B-e", "2000-01-01", "")),
        ("revoke", "ACCOUNT_NOT_FOUND", lambda: s.revoke(nobody, "B-e")),
        ("set_order", "ACCOUNT_NOT_FOUND", lambda: s.set_order(nobody, [Source(e, "B-e")], 1)),
    ]  # fmt: skip


async def test_every_refusal_of_every_account_script_changes_nothing(db):
    text, raw = db
    world = await World(AccountStore(text, 600)).make()
    cases = account_cases(world)
    for _, reason, call in cases:
        await refused(raw, call, reason)
    await world.s.set_order(world.p, [Source(world.e, "B-e")], 5)
    stale = await unchanged(raw, lambda: world.s.set_order(world.p, [], 4))  # a late copy
    assert stale == ([Source(world.e, "B-e")], 5)
    cases += await broken_index_cases(world, raw)
    missing = refusals_in_lua() - {(script, reason) for script, reason, _ in cases}
    assert not missing, f"refusals without a case: {sorted(missing)}"


async def broken_index_cases(w: World, raw: aioredis.Redis) -> list[tuple[str, str, Call]]:
    """An entry index that no longer agrees with the ledger is refused, not followed; so is a
    recorded entry id whose place holds another entry."""
    eidx, holds = account_keys(w.e)[2], account_keys(w.e)[3]
    await w.s.redis.hset(eidx, w.premium_debit, 1)  # a payment's leg, indexed: at another entry
    committed = json.loads(await w.s.redis.hget(holds, "h-done"))
    committed["entry_id"] = committed["entry_id"].split(".")[0] + ".1"  # the place of another
    await w.s.redis.hset(holds, "h-done", json.dumps(committed))
    cases: list[tuple[str, str, Call]] = [
        ("refund", "INTERNAL", lambda: w.s.refund(w.e, "rf-9", w.premium_debit, "x")),
        ("commit_hold", "INTERNAL", lambda: w.s.commit_hold(w.e, "h-done")),
    ]
    for _, reason, call in cases:
        await refused(raw, call, reason)
    return cases


# -- the other services' scripts ---------------------------------------------------------------
async def test_refused_binding_scripts_change_nothing(db):
    text, raw = db
    store = BindingStore(text)
    binder = new_pid()

    def binding(beneficiary: str) -> Binding:
        return Binding(new_binding_id("43", "43"), binder, beneficiary, 1, "2026-01-01", "",
                       BindingStatus.ACTIVE, 1)  # fmt: skip

    first = binding(new_pid())
    await store.create(first, 2, "fp", "CreateBinding:r1")
    await store.create(binding(new_pid()), 2, "fp", "CreateBinding:r2")
    where = b"bind:where:"  # a new beneficiary's province is recorded before the script
    await refused(raw, lambda: store.create(binding(new_pid()), 2, "x", "CreateBinding:r1"),
                  "IDEMPOTENCY_CONFLICT", where)  # fmt: skip
    again = Binding(**{**first.__dict__, "binding_id": new_binding_id("43", "43")})
    await refused(raw, lambda: store.create(again, 5, "fp", "CreateBinding:r3"), "BINDING_EXISTS")
    await refused(raw, lambda: store.create(binding(new_pid()), 2, "fp", "CreateBinding:r4"),
                  "BINDING_LIMIT_REACHED", where)  # fmt: skip
    assert await unchanged(raw, lambda: store.end(new_binding_id("43", "43"), 2, 5)) is None
    assert not await unchanged(raw, lambda: store.reorder("43", first.beneficiary_id, ["x"]))
    ended = await store.end(first.binding_id, BindingStatus.REMOVED, 5)
    assert await unchanged(raw, lambda: store.end(first.binding_id, BindingStatus.LAPSED, 6)) == (
        ended
    )


async def test_refused_steps_of_a_binding_across_provinces_change_nothing(db):
    text, raw = db
    store = BindingStore(text)
    binder = new_pid("520102")

    def binding(beneficiary: str) -> Binding:
        return Binding(new_binding_id("52", "43"), binder, beneficiary, 1, "2026-01-01", "",
                       BindingStatus.ACTIVE, 1)  # fmt: skip

    first = binding(new_pid())
    await store.create(first, 2, "fp", "CreateBinding:r1")
    await store.create(binding(new_pid()), 2, "fp", "CreateBinding:r2")
    where = b"bind:where:"
    await refused(raw, lambda: store.create(binding(new_pid()), 2, "x", "CreateBinding:r1"),
                  "IDEMPOTENCY_CONFLICT", where)  # fmt: skip
    again = Binding(**{**first.__dict__, "binding_id": new_binding_id("52", "43")})
    await refused(raw, lambda: store.create(again, 5, "fp", "CreateBinding:r3"), "BINDING_EXISTS")
    await refused(raw, lambda: store.create(binding(new_pid()), 2, "fp", "CreateBinding:r4"),
                  "BINDING_LIMIT_REACHED", where)  # fmt: skip
    assert await unchanged(raw, lambda: store.end(new_binding_id("52", "43"), 2, 5)) is None
    ended = await store.end(first.binding_id, BindingStatus.REMOVED, 5)
    assert await unchanged(raw, lambda: store.end(first.binding_id, BindingStatus.LAPSED, 6)) == (
        ended
    )


async def test_refused_request_claims_and_lock_moves_change_nothing(db):
    from gongji.account.v1 import account_pb2 as pb

    text, raw = db
    requests = Requests(text, "t")
    request = pb.CreditRequest(person_id=new_pid(), amount_fen=1, kind=1, request_id="r1")

    async def answer(fp: str, marker: str) -> pb.LedgerEntry:
        return pb.LedgerEntry(entry_id="e1")

    await requests.once("Credit", request, pb.LedgerEntry, answer)
    assert await unchanged(raw, lambda: requests.once("Credit", request, pb.LedgerEntry, answer))
    other = pb.CreditRequest(person_id=request.person_id, amount_fen=2, kind=1, request_id="r1")
    await refused(raw, lambda: requests.once("Credit", other, pb.LedgerEntry, answer),
                  "IDEMPOTENCY_CONFLICT")  # fmt: skip
    locks, pid = Locks(text, 5_000), new_pid()
    async with locks.hold([pid], 1) as held:
        await refused(raw, lambda: _second_holder(locks, pid), "LOCK_TIMEOUT")
        assert await unchanged(raw, lambda: text.get(lock_key(pid))) == held.owner


async def _second_holder(locks: Locks, pid: str) -> None:
    async with locks.hold([pid], 0.05):
        pass
