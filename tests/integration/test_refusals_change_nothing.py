"""Every refusal of every Redis script changes nothing (README "Money safety": Redis never rolls
a script back, so a script checks everything before its first write).

The scripts run against a Redis database of their own; before and after each refused call the
whole database is dumped and compared, key by key. Each account script's refusal reasons are
read from its Lua (and from the shared helpers it calls), and the test fails if one has no case
here."""

from __future__ import annotations

import json
import pathlib
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import redis.asyncio as aioredis

from services.account.domain import Source
from services.account.locks import Locks, Read, Wanted
from services.account.store import (
    AccountStore,
    account_key,
    account_keys,
    marker_key,
    payment_key,
    script_names,
)
from services.binding.domain import Binding
from services.binding.store import BindingStore, new_binding_id
from services.common.enums import (
    AccountStatus,
    BindingStatus,
    EntryKind,
    QuotaEndReason,
    StopReason,
)
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
_SOURCE_REFUSALS = {"NOT_BOUND", "ACCOUNT_NOT_FOUND", "NO_PERSONAL_ACCOUNT", "ACCOUNT_CLOSED",
                    "ACCOUNT_SUSPENDED", "INSURANCE_STOPPED", "INSUFFICIENT_FUNDS",
                    "QUOTA_NOT_FOUND", "QUOTA_ENDED"}  # fmt: skip
_HELPERS = {  # the shared helpers of lib.lua and payment.lua and the refusals each may answer
    "refuse_payment": {"ACCOUNT_NOT_FOUND", "NO_PERSONAL_ACCOUNT", "ACCOUNT_CLOSED",
                       "ACCOUNT_SUSPENDED", "INSURANCE_STOPPED"},
    "refuse_fence": {"LOCK_TIMEOUT"},
    "replay(": {"IDEMPOTENCY_CONFLICT"},
    "entry_by_id": {"INTERNAL"},
    "made_before(1)": {"SETTLEMENT_REVERSED", "IDEMPOTENCY_CONFLICT"},
    "made_before(1, ": {"SETTLEMENT_REVERSED", "IDEMPOTENCY_CONFLICT", "LOCK_TIMEOUT"},
    "refuse_patient(": {"ACCOUNT_NOT_FOUND", "BENEFICIARY_NOT_RESIDENT", "PREMIUM_ALREADY_PAID",
                        "ACCOUNT_SUSPENDED", "ACCOUNT_CLOSED", "INSURANCE_STOPPED"},
    "plan_shares(": _SOURCE_REFUSALS | {"INVALID_ARGUMENT"},
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
    """Accounts in every state a refusal needs: e pays, r is a resident, c closed, sus
    suspended, f under a lock held by another (fence `f_fence`), p a patient, st stopped; paid,
    cancelled, reversed and journaled payments."""

    def __init__(self, store: AccountStore) -> None:
        self.s = store
        self.locks = Locks(store, 60_000)
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
                              100, "2026-01-01", False, "fp", premium="2026")  # fmt: skip
        self.premium_debit = premium.shares[0].entry_id
        # Aid quotas (N1-N5): e's for p (ACTIVE, 300 of it used), for r (ENDED), for st
        # (awaiting consent); sus's and f's, made before sus is suspended and f locked by
        # another; f's for st awaits consent, and f's own bill afterwards leaves less than it
        # available.
        for funder, quota_id, relative, amount, pending in [
            (self.e, "Q-e", self.p, 1_000, False), (self.e, "Q-end", self.r, 100, False),
            (self.e, "Q-pend", self.st, 7_500, True), (self.sus, "Q-sus", self.p, 1_000, False),
            (self.sus, "Q-susp", self.r, 100, True), (self.f, "Q-f", self.p, 500, False),
            (self.f, "Q-fp", self.r, 100, True), (self.f, "Q-fbig", self.st, 9_000, True),
        ]:  # fmt: skip
            await s.open_quota(funder, quota_id, relative, 1, amount, 10, pending, 1, 1, "0")
        await s.close_quota(self.e, "Q-end", QuotaEndReason.BY_FUNDER, False, "", 0, 0, 0, "0")
        await s.pay("QPAID1", EntryKind.SETTLEMENT, self.p, [Source(self.e, "", "Q-e")], 300,
                    "2026-01-01", False, "fp")  # fmt: skip
        await s.pay("QPAID2", EntryKind.SETTLEMENT, self.f, [Source(self.f)], 1_000,
                    "2026-01-01", False, "fp")  # fmt: skip
        held = await self.locks.read(Wanted(self.f), "holder", "-")
        assert isinstance(held, Read)
        self.f_fence = held.fence
        await s.purchase(self.f, 100, 40, "PICC-HN", "pol-1", self.f_fence, 2026, True, 1, "", "")
        await s.purchase(self.f, 100, 40, "PICC-HN", "pol-2", self.f_fence, 2026, True, 1, "", "")
        await s.cancel_policy(self.f, "pol-2", "", "")
        await s.credit(self.e, 5, EntryKind.ADJUSTMENT, "m", "fp-A", "Credit:r1")
        await s.contribute(self.e, "2025-01", 800_000, 16_000, 48_000, 1, "", 200, "", "")
        await s.reverse_payment("REVERSED1")
        await s.call(
            "pay_plan",
            [payment_key("JOURNAL1")],
            await self.plan_args("JOURNAL1", self.p, [Source(self.e, "B-e")], "a1"),
        )
        await s.call("void_attempt", [payment_key("VOID1")], ["", "dead", "VOID1", 0])
        await s.call("void_attempt", [payment_key("PAID1")], ["", "dead", "PAID1", 1])
        for pid in (self.c, self.st):
            await s.stop(pid, StopReason.DEATH, "", "")
        await s.close(
            self.c, AccountStatus.CLOSED, EntryKind.WITHDRAWAL, "heir", "0", StopReason.DEATH, "",
            "",
        )  # fmt: skip
        await s.set_status(self.sus, AccountStatus.SUSPENDED, "fraud", "", "")
        return self

    async def plan_args(
        self, payment_id: str, patient: str, sources: list[Source], attempt: str,
        kind: int = EntryKind.SETTLEMENT, amount: int = 100, fp: str = "fp", year: int = 2027,
    ) -> list[object]:  # fmt: skip
        """pay_plan's arguments over the accounts as they are now (read, not locked)."""

        async def read(w: Wanted) -> Read:
            found = await self.locks.read(w)
            assert isinstance(found, Read)
            return found

        reads = {
            pid: await read(Wanted(pid, b, y, q))
            for pid, b, y, q in [
                (patient, "", str(year), ()),
                *((x.person_id, x.binding_id, "", (x.quota_id,)) for x in sources),
            ]
        }
        what = {
            "patient": {"fields": reads[patient].fields or False,
                        "year_paid": reads[patient].year_paid},
            "sources": [{"person_id": x.person_id, "binding_id": x.binding_id,
                         "quota_id": x.quota_id, "fields": reads[x.person_id].fields or False,
                         "grant": reads[x.person_id].grant,
                         "quota": reads[x.person_id].quotas.get(x.quota_id, False)}
                        for x in sources],
            "locks": {x.person_id: "1" for x in sources},
        }  # fmt: skip
        now_ms = int(time.time() * 1000)  # the payment's time: today's (else a stale day)
        return [fp, payment_id, kind, amount, "2026-01-01", 0, "", "", str(year), attempt,
                now_ms, json.dumps(what), ""]  # fmt: skip


def quota_cases(w: World, nobody: str) -> list[tuple[str, str, Call]]:
    """Every refusal of the aid quota scripts (N1, N2, B14), over World's quotas."""
    s, e, r, c, sus, f, p, st = w.s, w.e, w.r, w.c, w.sus, w.f, w.p, w.st

    def open_(funder: str, quota_id: str, relative: str, amount: int = 100, limit: int = 10,
              fence: str = "0") -> Call:  # fmt: skip
        return lambda: s.open_quota(funder, quota_id, relative, 1, amount, limit, False, 1, 1,
                                    fence)  # fmt: skip

    def change(funder: str, quota_id: str, amount: int, fence: str = "0") -> Call:
        return lambda: s.change_quota(funder, quota_id, amount, fence)

    def close(funder: str, quota_id: str, fence: str = "0") -> Call:
        return lambda: s.close_quota(funder, quota_id, QuotaEndReason.BY_FUNDER, False, p, 1, 1,
                                     1, fence)  # fmt: skip

    def activate(funder: str, quota_id: str, fence: str = "0") -> Call:
        return lambda: s.activate_quota(funder, quota_id, fence)

    return [
        ("quota_open", "ACCOUNT_NOT_FOUND", open_(nobody, "Q1", p)),
        ("quota_open", "BINDER_NOT_EMPLOYEE", open_(r, "Q1", p)),
        ("quota_open", "ACCOUNT_SUSPENDED", open_(sus, "Q1", c)),
        ("quota_open", "ACCOUNT_CLOSED", open_(c, "Q1", p)),
        ("quota_open", "INSURANCE_STOPPED", open_(st, "Q1", p)),
        ("quota_open", "QUOTA_EXISTS", open_(e, "Q1", p)),
        ("quota_open", "QUOTA_LIMIT_REACHED", open_(e, "Q1", c, limit=2)),
        ("quota_open", "INSUFFICIENT_FUNDS", open_(e, "Q1", c, amount=10**9)),
        ("quota_open", "LOCK_TIMEOUT", open_(f, "Q1", c)),
        ("quota_open", "IDEMPOTENCY_CONFLICT", open_(e, "Q-e", c)),
        ("quota_change", "QUOTA_NOT_FOUND", change(e, "nope", 100)),
        ("quota_change", "QUOTA_ENDED", change(e, "Q-end", 100)),
        ("quota_change", "QUOTA_BELOW_USED", change(e, "Q-e", 299)),
        ("quota_change", "ACCOUNT_SUSPENDED", change(sus, "Q-sus", 2_000)),
        ("quota_change", "INSUFFICIENT_FUNDS", change(e, "Q-e", 10**9)),
        ("quota_change", "LOCK_TIMEOUT", change(f, "Q-f", 400)),
        ("quota_close", "QUOTA_NOT_FOUND", close(nobody, "Q-e")),
        ("quota_close", "LOCK_TIMEOUT", close(f, "Q-f")),
        ("quota_activate", "QUOTA_NOT_FOUND", activate(e, "nope")),
        ("quota_activate", "ACCOUNT_SUSPENDED", activate(sus, "Q-susp")),
        ("quota_activate", "INSUFFICIENT_FUNDS", activate(f, "Q-fbig")),
        ("quota_activate", "LOCK_TIMEOUT", activate(f, "Q-fp")),
    ]


async def account_cases(w: World) -> list[tuple[str, str, Call]]:
    s, e, r, c, sus, f, p, st = w.s, w.e, w.r, w.c, w.sus, w.f, w.p, w.st

    def month(pid: str, which: str, base: int = 800_000, bp: int = 200, fp: str = "",
              marker: str = "") -> Awaitable[object]:  # fmt: skip
        return s.contribute(pid, which, base, 16_000, 48_000, 1, "", bp, fp, marker)

    def buy(pid: str, amount: int, policy_no: str, fence: str = "", fp: str = "",
            marker: str = "", partner: bool = True) -> Awaitable[object]:  # fmt: skip
        fence = fence or (w.f_fence if pid == f else "0")
        return s.purchase(pid, amount, 40, "I", policy_no, fence, 2026, partner, 1, fp, marker)

    nobody = new_pid()

    def pay(pid: str, kind: int, patient: str, sources: list[Source], amount: int = 100,
            fp: str = "fp", year: int = 2027) -> Call:  # fmt: skip
        return lambda: s.pay(pid, kind, patient, sources, amount, "2026-01-01", False, fp,
                             premium=str(year))  # fmt: skip

    async def plan(pid: str, kind: int, patient: str, sources: list[Source], amount: int = 100,
                   fp: str = "fp", year: int = 2027, attempt: str = "a2") -> Call:  # fmt: skip
        args = await w.plan_args(pid, patient, sources, attempt, kind, amount, fp, year)
        return lambda: s.call("pay_plan", [payment_key(pid)], args)

    def step(pid: str, n: int, amount: int, fence: str) -> Call:
        shares = json.dumps([{"n": n, "amount": str(amount), "own": False}])
        args = ["", "S1", shares, EntryKind.SETTLEMENT, "", 1, fence, "", ""]
        return lambda: s.call("pay_step", [account_key(pid), marker_key(pid, "-")], args)

    def cancel_begin(payment_id: str, request_id: str, attempt: str = "a2") -> Call:
        args = ["", "x", request_id, 0, attempt]
        return lambda: s.call("cancel_begin", [payment_key(payment_id)], args)

    def refund_step(pid: str, payment_id: str) -> Call:
        share = json.dumps({"amount": "1000", "entry_id": f"{payment_id}-1", "person_id": pid})
        args = ["", payment_id, 1, share]
        return lambda: s.call("refund_step", [account_key(pid), marker_key(pid, "-")], args)

    premium, bill = EntryKind.PREMIUM, EntryKind.SETTLEMENT
    return [
        ("pay_plan", "SETTLEMENT_REVERSED", await plan("REVERSED1", bill, p, [Source(p)])),
        ("pay_plan", "IDEMPOTENCY_CONFLICT",
         await plan("PAID1", bill, p, [Source(e, "B-e")], fp="other")),
        ("pay_plan", "IDEMPOTENCY_CONFLICT",  # a payment being made under the key
         await plan("JOURNAL1", bill, p, [Source(e, "B-e")], fp="other")),
        ("pay_plan", "LOCK_TIMEOUT",  # an attempt the recovery loop gave up
         await plan("VOID1", bill, p, [Source(e, "B-e")], attempt="dead")),
        ("pay_plan", "ACCOUNT_NOT_FOUND", await plan("N1", bill, nobody, [Source(e, "B-e")])),
        ("pay_plan", "ACCOUNT_SUSPENDED", await plan("N2", bill, sus, [Source(e, "B-e")])),
        ("pay_plan", "ACCOUNT_CLOSED", await plan("N3", bill, c, [Source(e, "B-e")])),
        ("pay_plan", "INSURANCE_STOPPED", await plan("N16", bill, st, [Source(st)])),
        ("pay_plan", "INVALID_ARGUMENT",
         await plan("N4", bill, p, [Source(e, "B-e"), Source(e, "B-e")])),
        ("pay_plan", "BENEFICIARY_NOT_RESIDENT", await plan("N5", premium, p, [Source(e, "B-e")])),
        ("pay_plan", "PREMIUM_ALREADY_PAID",
         await plan("N11", premium, r, [Source(e, "B-er")], year=2026)),
        ("pay_plan", "NOT_BOUND", await plan("N6", premium, r, [Source(f, "B-e")])),
        ("pay_plan", "ACCOUNT_NOT_FOUND", await plan("N6b", premium, r, [Source(nobody, "B")])),
        ("pay_plan", "INSUFFICIENT_FUNDS",
         await plan("N12", premium, r, [Source(e, "B-er")], 10**9)),
        ("pay_plan", "NO_PERSONAL_ACCOUNT", await plan("N8", premium, r, [Source(r)])),
        ("pay_plan", "ACCOUNT_CLOSED", await plan("N9", premium, r, [Source(c, "B-cr")])),
        ("pay_plan", "ACCOUNT_SUSPENDED", await plan("N10", premium, r, [Source(sus, "B-sr")])),
        ("pay_plan", "INSURANCE_STOPPED", await plan("N15", premium, r, [Source(st, "B-str")])),
        ("pay_step", "INTERNAL", step(nobody, 1, 100, "1")),  # the account is gone
        ("pay_step", "INTERNAL", step(f, 1, 10**9, w.f_fence)),  # more than it holds
        ("pay_step", "LOCK_TIMEOUT", step(e, 1, 100, "7")),  # the lock was taken over
        ("pay_done", "INTERNAL",
         lambda: s.call("pay_done", [payment_key("N13")], ["", "[]"])),
        ("cancel_begin", "SETTLEMENT_NOT_FOUND", cancel_begin("nope", "c")),
        ("cancel_begin", "ALREADY_CANCELLED", cancel_begin("PAID2", "c2")),
        ("cancel_begin", "LOCK_TIMEOUT", cancel_begin("PAID1", "c", attempt="dead")),
        ("refund_step", "INTERNAL", refund_step(nobody, "PAID1")),
        ("cancel_done", "INTERNAL", lambda: s.call("cancel_done", [payment_key("PAID1")], [""])),
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
        ("close", "ACCOUNT_NOT_FOUND", lambda: s.close(nobody, 3, 8, "x", "0", 1, "", "")),
        ("close", "NO_PERSONAL_ACCOUNT", lambda: s.close(r, 3, 8, "x", "0", 1, "", "")),
        ("close", "ACCOUNT_CLOSED", lambda: s.close(c, 3, 8, "x", "0", 1, "", "")),
        ("close", "INSURANCE_NOT_STOPPED", lambda: s.close(f, 3, 8, "x", w.f_fence, 1, "", "")),
        ("close", "WITHDRAWAL_NOT_ALLOWED", lambda: s.close(st, 3, 8, "x", "0", 2, "", "")),
        ("close", "LOCK_TIMEOUT", lambda: s.close(f, 4, 9, "x", "3", None, "", "")),
        ("close", "IDEMPOTENCY_CONFLICT",
         lambda: s.close(e, 3, 8, "x", "0", 1, "fp-B", "Credit:r1")),
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
        ("purchase", "INSURANCE_STOPPED", lambda: buy(st, 1, "x")),
        ("pay", "INSURANCE_STOPPED", pay("N14", bill, st, [Source(st)])),
        ("pay", "INSURANCE_STOPPED", pay("N15", EntryKind.PREMIUM, r, [Source(st, "B-str")])),
        ("purchase", "ACCOUNT_NOT_FOUND", lambda: buy(nobody, 1, "x")),
        ("purchase", "NO_PERSONAL_ACCOUNT", lambda: buy(r, 1, "x")),
        ("purchase", "ACCOUNT_CLOSED", lambda: buy(c, 1, "x")),
        ("purchase", "ACCOUNT_SUSPENDED", lambda: buy(sus, 1, "x")),
        ("purchase", "LOCK_TIMEOUT", lambda: buy(f, 1, "x", fence="3")),
        ("purchase", "INSURER_NOT_PARTNER", lambda: buy(f, 1, "x", partner=False)),
        ("purchase", "POLICY_NO_IN_USE", lambda: buy(f, 1, "pol-1")),
        ("purchase", "COMMERCIAL_LIMIT_EXCEEDED", lambda: buy(e, 90_000, "x")),
        ("purchase", "IDEMPOTENCY_CONFLICT", lambda: buy(e, 1, "x", "", "fp-B", "Credit:r1")),
        ("cancel_policy", "ACCOUNT_NOT_FOUND", lambda: s.cancel_policy(nobody, "pol-1", "", "")),
        ("cancel_policy", "POLICY_NOT_FOUND", lambda: s.cancel_policy(f, "nope", "", "")),
        ("cancel_policy", "ALREADY_CANCELLED", lambda: s.cancel_policy(f, "pol-2", "", "")),
        ("cancel_policy", "IDEMPOTENCY_CONFLICT",
         lambda: s.cancel_policy(e, "pol-1", "fp-B", "Credit:r1")),
        ("pay", "SETTLEMENT_REVERSED", pay("REVERSED1", bill, p, [Source(p)])),
        ("pay", "IDEMPOTENCY_CONFLICT", pay("PAID1", bill, p, [Source(e, "B-e")], fp="other")),
        ("pay", "ACCOUNT_NOT_FOUND", pay("N1", bill, nobody, [Source(e, "B-e")])),
        ("pay", "ACCOUNT_SUSPENDED", pay("N2", bill, sus, [Source(e, "B-e")])),
        ("pay", "ACCOUNT_CLOSED", pay("N3", bill, c, [Source(e, "B-e")])),
        ("pay", "INVALID_ARGUMENT", pay("N4", bill, p, [Source(e, "B-e"), Source(e, "B-e")])),
        ("pay", "BENEFICIARY_NOT_RESIDENT", pay("N5", EntryKind.PREMIUM, p, [Source(e, "B-e")])),
        ("pay", "NOT_BOUND", pay("N6", EntryKind.PREMIUM, r, [Source(f, "B-e")])),
        ("pay", "INSUFFICIENT_FUNDS", pay("N7", EntryKind.PREMIUM, r, [Source(e, "B-er")], 10**9)),
        ("pay", "NO_PERSONAL_ACCOUNT", pay("N8", EntryKind.PREMIUM, r, [Source(r)])),
        ("pay", "ACCOUNT_CLOSED", pay("N9", EntryKind.PREMIUM, r, [Source(c, "B-cr")])),
        ("pay", "ACCOUNT_SUSPENDED", pay("N10", EntryKind.PREMIUM, r, [Source(sus, "B-sr")])),
        ("pay", "PREMIUM_ALREADY_PAID",
         pay("N11", EntryKind.PREMIUM, r, [Source(e, "B-er")], year=2026)),
        ("pay", "QUOTA_NOT_FOUND", pay("N13", premium, r, [Source(e, "", "Q-e")])),  # p's
        ("pay", "QUOTA_ENDED", pay("N14", premium, r, [Source(e, "", "Q-end")])),
        ("pay_plan", "QUOTA_NOT_FOUND", await plan("N13", premium, r, [Source(e, "", "nope")])),
        ("pay_plan", "QUOTA_ENDED", await plan("N14", premium, r, [Source(e, "", "Q-end")])),
        *quota_cases(w, nobody),
        ("cancel_payment", "SETTLEMENT_NOT_FOUND",
         lambda: s.cancel_payment("nope", "x", "c", False)),
        ("cancel_payment", "SETTLEMENT_NOT_FOUND",
         lambda: s.cancel_payment("PREMIUM1", "x", "c", False)),
        ("cancel_payment", "ALREADY_CANCELLED",
         lambda: s.cancel_payment("PAID2", "x", "c2", False)),
        ("cancel_payment", "INVALID_ARGUMENT",  # the accounts given are not the payment's
         lambda: s.call("cancel_payment", [payment_key("PAID1"), payment_key("PAID1"),
                                            payment_key("PAID1"), account_key(f)],
                         ["", "", "c", 0, ""])),
        ("grant", "ACCOUNT_NOT_FOUND", lambda: s.grant(nobody, p, "B-x", "2026-01-01", "")),
        ("grant", "IDEMPOTENCY_CONFLICT", lambda: s.grant(e, r, "B-e", "2000-01-01", "")),
        ("revoke", "ACCOUNT_NOT_FOUND", lambda: s.revoke(nobody, "B-e")),
        ("set_order", "ACCOUNT_NOT_FOUND", lambda: s.set_order(nobody, [Source(e, "B-e")], 1)),
    ]  # fmt: skip


async def test_every_refusal_of_every_account_script_changes_nothing(db):
    text, raw = db
    world = await World(AccountStore(text)).make()
    cases = await account_cases(world)
    for _, reason, call in cases:
        await refused(raw, call, reason)
    await world.s.set_order(world.p, [Source(world.e, "B-e")], 5)
    stale = await unchanged(raw, lambda: world.s.set_order(world.p, [], 4))  # a late copy
    assert stale == ([Source(world.e, "B-e")], 5)
    busy = await unchanged(raw, lambda: world.locks.read(Wanted(world.f), "other", "-"))
    assert busy == {"busy": True, "what": "-"}  # another's lock, its lease running: not taken
    cases += await broken_index_cases(world, raw)
    missing = refusals_in_lua() - {(script, reason) for script, reason, _ in cases}
    assert not missing, f"refusals without a case: {sorted(missing)}"


async def broken_index_cases(w: World, raw: aioredis.Redis) -> list[tuple[str, str, Call]]:
    """An entry index that no longer agrees with the ledger is refused, not followed."""
    eidx = account_keys(w.e)[2]
    await w.s.redis.hset(eidx, "PAID1-r1", 1)  # a refund's id, indexed: at another entry
    await w.s.redis.hset(eidx, w.premium_debit, 1)  # a payment's leg, indexed: at another entry
    share = json.dumps({"amount": "1000", "entry_id": w.debit, "person_id": w.e})
    premium = w.premium_debit.rsplit("-", 1)[0]
    keys = [account_key(w.e), marker_key(w.e, "-")]
    cases: list[tuple[str, str, Call]] = [
        ("refund_step", "INTERNAL", lambda: w.s.call("refund_step", keys, ["", "PAID1", 1, share])),
        ("pay_step", "INTERNAL", lambda: w.s.call(
            "pay_step", keys, ["", premium, json.dumps([{"n": 1, "amount": "100", "own": False}]),
                               EntryKind.PREMIUM, "", 1, "0", "", ""])),
    ]  # fmt: skip
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
    store = AccountStore(text)
    locks, pid = Locks(store, 5_000), new_pid()
    await store.open(pid, "甲", 1, "430102", "", "")
    async with locks.hold([pid], 1) as held:
        await refused(raw, lambda: _second_holder(locks, pid), "LOCK_TIMEOUT")
        assert (
            await unchanged(raw, lambda: text.hget(account_key(pid), "fence")) == (held.fences[pid])
        )


async def _second_holder(locks: Locks, pid: str) -> None:
    async with locks.hold([pid], 0.05):
        pass
