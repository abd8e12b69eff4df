"""A payment under Redis Cluster takes the family's locks (services/account/stepwise.py and
locks.py): whatever runner pauses, dies or comes back, each share is applied once and the
outcome is one that some serial order of the payments gives (docs/ARCHITECTURE.md "The money
core"; the fencing timeline in services/account/locks.py; rules S2, S8, S11, S12, A2)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import pytest
import redis.asyncio as aioredis

from gongji.binding.v1 import binding_pb2 as bpb
from services.account.domain import Payment, Source
from services.account.locks import Locks
from services.account.stepwise import PENDING_BUCKETS, Stepwise, pending_bucket
from services.account.store import AccountStore, account_key, beijing_day, date_of_day, day_key
from services.common.enums import EntryKind, InsuranceType, PaymentState
from services.common.errors import DomainError
from services.common.intents import now_ms
from services.common.redisdb import EmbeddedCluster, connect
from services.common.rpc import reason_of
from tests.integration.accounts import get
from tests.integration.bindings import CHILD, create, person
from tests.integration.test_settlement import bill
from tests.support import new_pid

DAY = "2026-06-01"
Match = Callable[[tuple[Any, ...], Any], bool]


class Cut(Exception):
    """Where the caller died: after this command's answer came back."""


class Gate:
    """A cluster client whose first command matching `at` stops before its answer is handed
    back, until `go()` (a runner paused at that await); or, with `cut`, raises there (a runner
    that dies)."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis, self.at, self.cut = redis, None, False
        self.reached, self.resume = asyncio.Event(), asyncio.Event()
        command = redis.execute_command

        async def gated(*args: Any, **options: Any) -> Any:
            result = await command(*args, **options)
            if self.at is not None and self.at(args, result):
                self.at = None
                if self.cut:
                    raise Cut(args[0])
                self.reached.set()
                await self.resume.wait()
            return result

        redis.execute_command = gated  # type: ignore[method-assign]

    def arm(self, at: Match, cut: bool = False) -> None:
        self.at, self.cut = at, cut
        self.reached.clear()
        self.resume.clear()


def replied(*parts: str) -> Match:
    return lambda args, result: isinstance(result, str) and all(p in result for p in parts)


def marked(args: tuple[Any, ...], result: Any) -> bool:
    return args[0] == "ZADD" and str(args[1]).startswith("acct:{paying:")


@pytest.fixture
async def gate(cluster: EmbeddedCluster) -> AsyncIterator[Gate]:
    redis = connect(cluster.url, mode="cluster")
    yield Gate(redis)
    await redis.aclose()


async def opened(store: AccountStore, balance: int = 0, resident: bool = False) -> str:
    pid = new_pid()
    kind = InsuranceType.RESIDENT if resident else InsuranceType.EMPLOYEE
    await store.open(pid, "甲", kind, "430102", "", "")
    if balance:
        await store.credit(pid, balance, EntryKind.ALLOCATION, "m", "", "")
    return pid


async def recover_all(steps: Stepwise) -> None:
    """What the recovery loop does once the window has passed: every mark finished."""
    for n in range(PENDING_BUCKETS):
        for member in await steps.redis.zrange(pending_bucket(n), 0, -1):
            await steps.recover(member)


async def premium(steps: Stepwise, payment_id: str, beneficiary: str, payer: str,
                  binding_id: str, year: int = 2030) -> Payment:  # fmt: skip
    return await steps.pay(payment_id, EntryKind.PREMIUM, beneficiary, [Source(payer, binding_id)],
                           400, DAY, False, "fp", premium=str(year))  # fmt: skip


async def test_a_premium_refused_then_paid_by_another_runner_stands(gate):  # rule A2
    # A is refused INSUFFICIENT_FUNDS and paused past the recovery window; a credit lands; the
    # recovery loop and the caller's retry pay. A's giving up must undo nothing of that: the
    # premium was paid twice in one year, or 400 fen left with no record, when it did
    store = AccountStore(gate.redis)
    steps = Stepwise(store, Locks(store, 5_000), 0)
    payer, kid = await opened(store, 300), await opened(store, resident=True)
    await store.grant(payer, kid, "B-1", "2000-01-01", "")
    gate.arm(replied("INSUFFICIENT_FUNDS"))
    first = asyncio.ensure_future(premium(steps, "PREMIUM-A", kid, payer, "B-1"))
    await gate.reached.wait()
    await store.credit(payer, 1_000, EntryKind.ADJUSTMENT, "m", "", "")
    await recover_all(steps)
    paid = await premium(steps, "PREMIUM-A", kid, payer, "B-1")  # the caller's retry
    gate.resume.set()
    with pytest.raises(DomainError) as refusal:
        await first
    assert refusal.value.reason == "INSUFFICIENT_FUNDS"
    await recover_all(steps)
    assert await store.payment("PREMIUM-A") == paid
    with pytest.raises(DomainError) as again:  # another payment for the same year
        await premium(steps, "PREMIUM-B", kid, payer, "B-1")
    assert again.value.reason == "PREMIUM_ALREADY_PAID"
    assert (await store.get(payer)).balance_fen == 900


async def test_a_caller_paused_after_its_mark_leaves_nothing_unfinished(gate):  # rules S8, S12
    # A is paused after its pending mark, before its journal; the recovery loop finds no journal
    # and takes the mark off; A resumes, journals, debits one share and dies. Before, that
    # debit had no record and nothing would ever finish it
    store = AccountStore(gate.redis)
    steps = Stepwise(store, Locks(store, 5_000), 0)
    patient, first, second = await opened(store), await opened(store, 200), await opened(store, 900)
    for payer in (first, second):
        await store.grant(payer, patient, f"B-{payer}", "2000-01-01", "")
    sources = [Source(first, f"B-{first}"), Source(second, f"B-{second}")]

    def pay() -> Any:
        return steps.pay("PAUSED-1", EntryKind.SETTLEMENT, patient, sources, 500, DAY, False, "fp")

    gate.arm(marked)
    caller = asyncio.ensure_future(pay())
    await gate.reached.wait()
    await recover_all(steps)  # no journal yet
    gate.arm(replied('"entry_id":"PAUSED-1-1"', '"balance_after"'), cut=True)
    gate.resume.set()
    with pytest.raises((DomainError, Cut)):
        await caller
    gate.arm(lambda *_: False)
    await recover_all(steps)  # whatever the caller left, finished or given up, now
    made = await store.payment("PAUSED-1")
    balances = [(await store.get(p)).balance_fen for p in (first, second)]
    assert balances == ([0, 600] if made else [200, 900]), made
    paid = await pay()  # the caller's retry: the payment, made once
    assert [s.amount_fen for s in paid.shares] == [200, 300]
    assert [(await store.get(p)).balance_fen for p in (first, second)] == [0, 600]


async def _two_children_of_one_payer(gate: Gate) -> tuple[AccountStore, str, str, str, Any]:
    """A payer with 1,000 fen bound to two children, and how to settle 700 for either, under
    locks whose lease is 200 ms."""
    store = AccountStore(gate.redis)
    steps = Stepwise(store, Locks(store, 200), 30_000)
    dad, c1, c2 = await opened(store, 1_000), await opened(store), await opened(store)
    for child in (c1, c2):
        await store.grant(dad, child, f"B-{child}", "2000-01-01", "")

    def pay(payment_id: str, child: str) -> Any:
        return steps.pay(payment_id, EntryKind.SETTLEMENT, child, [Source(dad, f"B-{child}")],
                         700, DAY, False, "fp")  # fmt: skip

    return store, dad, c1, c2, pay


async def test_a_holder_paused_past_its_lease_is_refused_and_the_next_pays(gate):
    # the fencing timeline (locks.py): A locks dad's account and is paused until its lease runs
    # out; B locks it with a higher fence and pays; A resumes and is refused; A's retry pays
    # after B
    store, dad, c1, c2, pay = await _two_children_of_one_payer(gate)

    gate.arm(replied('"fence"', '"fields"'))
    a = asyncio.ensure_future(pay("LEASE-A", c1))
    await gate.reached.wait()
    fence_a = await gate.redis.hget(account_key(dad), "fence")
    await asyncio.sleep(0.3)  # A's lease runs out
    b = await pay("LEASE-B", c2)
    assert int(await gate.redis.hget(account_key(dad), "fence")) > int(fence_a)
    gate.resume.set()
    with pytest.raises(DomainError) as refusal:
        await a
    assert refusal.value.reason == "LOCK_TIMEOUT"
    assert [(s.person_id, s.amount_fen) for s in b.shares] == [(dad, 700)]
    assert await store.payment("LEASE-A") is None
    again = await pay("LEASE-A", c1)  # serially after B: what is left
    assert [(s.person_id, s.amount_fen) for s in again.shares] == [(dad, 300)]
    assert (await store.get(dad)).balance_fen == 0


async def test_a_holder_paused_after_its_plan_is_finished_by_the_next_taker(gate):
    # a plan journaled is never overtaken: the next taker of the lock writes its share first,
    # so the outcome is A then B; A, resumed, finds its share written
    store, dad, c1, c2, pay = await _two_children_of_one_payer(gate)

    gate.arm(replied('"phase":"paying"'))
    a = asyncio.ensure_future(pay("PLAN-A", c1))
    await gate.reached.wait()
    await asyncio.sleep(0.3)  # A's lease runs out after its plan
    b = await pay("PLAN-B", c2)
    gate.resume.set()
    done = await a
    assert done.state == PaymentState.PAID
    assert [s.amount_fen for s in done.shares] == [700]
    assert [s.amount_fen for s in b.shares] == [300]
    assert (await store.get(dad)).balance_fen == 0


async def _settled(settlement: Any, request: Any) -> Any:
    """A caller's settle: again while the answer is 'busy, retry'."""
    for _ in range(200):
        try:
            return await settlement.Settle(request, timeout=10)
        except grpc.aio.AioRpcError as e:
            if reason_of(e) not in ("LOCK_TIMEOUT", "SETTLEMENT_IN_PROGRESS"):
                raise
        await asyncio.sleep(0.05)
    raise AssertionError("never settled")


async def test_two_children_with_opposite_payer_orders_settle_as_in_some_serial_order(
    account, binding, settlement
):  # rules S2, S11: one gets 15,000 from the family and the other 5,000, never 10,000 each
    async def round_() -> list[int]:
        dad, mum = await person(account, 1960, 10_000), await person(account, 1962, 10_000)
        c1, c2 = await person(account, 1990, 0), await person(account, 1992, 0)
        for parent in (dad, mum):
            for child in (c1, c2):
                await binding.CreateBinding(create(parent, child, CHILD), timeout=10)
        reorder = bpb.SetPayerOrderRequest(beneficiary_id=c2, binder_ids=[mum, dad],
                                           request_id=new_pid())  # fmt: skip
        await binding.SetPayerOrder(reorder, timeout=10)
        paid = await asyncio.gather(*(_settled(settlement, bill(c, 15_000)) for c in (c1, c2)))
        assert [(await get(account, p)).balance_fen for p in (dad, mum)] == [0, 0]
        return sorted(p.acct_mulaid_pay_fen for p in paid)

    outcomes = await asyncio.gather(*(round_() for _ in range(12)))
    assert outcomes == [[5_000, 15_000]] * 12


def nth(k: int) -> Match:
    seen = [0]

    def at(args: tuple[Any, ...], result: Any) -> bool:
        seen[0] += 1
        return seen[0] == k

    return at


async def test_a_payment_paused_past_its_lease_at_any_await_stays_serial(gate, cluster):
    # every await of A's payment in turn: A paused there past its lease, B (sharing A's second
    # payer) pays meanwhile, A resumes (and, if refused, retries): the outcome is A then B, or
    # B then A, and every fen is where one of them puts it (rules S2, S11, S12)
    store = AccountStore(gate.redis)
    steps = Stepwise(store, Locks(store, 100), 30_000)
    other = connect(cluster.url, mode="cluster")
    b_store = AccountStore(other)
    b_steps = Stepwise(b_store, Locks(b_store, 5_000), 30_000)
    k, paused = 0, True
    while paused:
        k += 1
        a_kid, b_kid = await opened(store, 300), await opened(store)
        first, second = await opened(store, 200), await opened(store, 1_000)
        for payer, kid in ((first, a_kid), (second, a_kid), (second, b_kid)):
            await store.grant(payer, kid, f"B-{payer}-{kid}", "2000-01-01", "")
        a_sources = [Source(a_kid), Source(first, f"B-{first}-{a_kid}"),
                     Source(second, f"B-{second}-{a_kid}")]  # fmt: skip
        b_sources = [Source(second, f"B-{second}-{b_kid}")]

        def pay_a(k: int = k, kid: str = a_kid, sources: list[Source] = a_sources) -> Any:
            return steps.pay(f"A{k}", EntryKind.SETTLEMENT, kid, sources, 800, DAY, False, "a")

        gate.arm(nth(k))
        a = asyncio.ensure_future(pay_a())
        await asyncio.wait([a, asyncio.ensure_future(gate.reached.wait())],
                           return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
        paused = gate.reached.is_set()
        if paused:
            await asyncio.sleep(0.2)  # past A's lease
        b = await b_steps.pay(f"B{k}", EntryKind.SETTLEMENT, b_kid, b_sources, 900, DAY, False,
                              "b")  # fmt: skip
        gate.resume.set()
        try:
            a_paid = await a
        except DomainError as e:
            assert e.reason == "LOCK_TIMEOUT", (k, e)
            a_paid = await pay_a()  # the caller's retry
        from_second = ([s.amount_fen for s in a_paid.shares if s.person_id == second] or [0])[0]
        assert (from_second, b.shares[0].amount_fen) in ((300, 700), (100, 900)), k
        assert (await store.get(second)).balance_fen == 0, k
        assert [(await store.get(p)).balance_fen for p in (a_kid, first)] == [0, 0], k
    await other.aclose()
    assert k >= 8, "the walk should pass every step of a payment"


async def test_a_day_read_as_over_finishes_its_payments_in_steps_first(gate):
    # rules N6, N7: a day's list is final once the day is over. A payment journaled before the
    # end of the day but not yet finished (its caller paused) is finished by the reader of the
    # day (Stepwise.flush), so it is listed before the answer is given, never after
    store = AccountStore(gate.redis)
    steps = Stepwise(store, Locks(store, 5_000), 30_000)
    patient = await opened(store, 1_000)
    gate.arm(replied('"phase":"paying"'))  # paused right after its journal
    first = asyncio.ensure_future(steps.pay(
        "S-day", EntryKind.SETTLEMENT, patient, [Source(patient)], 300, DAY, False, "fp",
        institution_id="H61040000001"))  # fmt: skip
    await gate.reached.wait()
    day_list = day_key("H61040000001", date_of_day(beijing_day(now_ms())))
    assert await gate.redis.zrange(day_list, 0, -1) == []
    await steps.flush(now_ms() + 1)  # as ListDayPayments does once the day is over
    assert await gate.redis.zrange(day_list, 0, -1) == ["+S-day"]
    gate.resume.set()
    paid = await first
    assert paid == await store.payment("S-day") and paid.state == PaymentState.PAID
    assert (await store.get(patient)).balance_fen == 700
