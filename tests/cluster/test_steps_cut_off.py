"""A payment and a cancel made in steps (Redis Cluster: services/account/stepwise.py), cut off
after each of their Redis commands in turn, as a crash or a caller's deadline would cut them:
the recovery loop then finishes what was begun, a retry answers the same, and no fen is made,
lost or taken twice (README "Money safety";
invariants 1-3 of docs/ARCHITECTURE.md)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, cast

import pytest
import redis.asyncio as aioredis

from services.account.client import AccountClient
from services.account.domain import Payment, Source
from services.account.locks import OWN, Locks, Read, Wanted
from services.account.stepwise import PENDING_BUCKETS, Stepwise, pending_bucket
from services.account.store import AccountStore, account_key, year_key
from services.binding.domain import Binding
from services.binding.lifecycle import Lifecycle
from services.binding.store import BindingStore, new_binding_id
from services.common.enums import BindingStatus, EntryKind, InsuranceType, PaymentState
from services.common.errors import DomainError
from services.common.redisdb import EmbeddedCluster, connect
from tests.support import new_pid

DAY = "2026-06-01"


class Cut(Exception):
    """Where the caller died: after this command's answer came back."""


@pytest.fixture
async def cutter(cluster: EmbeddedCluster) -> AsyncIterator[tuple[aioredis.Redis, list[int]]]:
    """A cluster client whose k-th command (k = at[0]; 0 = none) returns, then its caller is
    cut off (an exception its clean-up sees, as a cancel is); with `dead[0]`, every command
    after it fails too until the next arm(), so no clean-up reaches Redis (a kill)."""
    redis = connect(cluster.url, mode="cluster")
    at, seen, dead, killed = [0], [0], [False], [False]
    command = redis.execute_command

    async def cut(*args: Any, **options: Any) -> Any:
        if killed[0]:
            raise Cut("after the kill")
        result = await command(*args, **options)
        seen[0] += 1
        if seen[0] == at[0]:
            killed[0] = dead[0]
            raise Cut(args[0])
        return result

    redis.execute_command = cut  # type: ignore[method-assign]

    def arm(k: int) -> None:
        at[0], seen[0], killed[0] = k, 0, False

    redis.dead = dead  # type: ignore[attr-defined]
    yield redis, at, arm  # type: ignore[misc]
    await redis.aclose()


async def family(store: AccountStore) -> tuple[str, str, str, str]:
    """A patient with 300 fen, a first payer with 200, a second with 1,000; and a resident."""
    patient, first, second, resident = new_pid(), new_pid(), new_pid(), new_pid()
    for pid, fen in ((patient, 300), (first, 200), (second, 1_000)):
        await store.open(pid, "甲", InsuranceType.EMPLOYEE, "430102", "", "")
        await store.credit(pid, fen, EntryKind.ALLOCATION, "m", "", "")
    await store.open(resident, "乙", InsuranceType.RESIDENT, "430102", "", "")
    for binder, beneficiary in ((first, patient), (second, patient), (second, resident)):
        await store.grant(binder, beneficiary, f"B-{binder}-{beneficiary}", "2000-01-01", "")
    return patient, first, second, resident


def payers_of(patient: str, first: str, second: str) -> list[Source]:
    """The family's sources of a payment for the patient: he, then his two payers."""
    return [Source(patient), Source(first, f"B-{first}-{patient}"),
            Source(second, f"B-{second}-{patient}")]  # fmt: skip


async def balances(store: AccountStore, *pids: str) -> list[int]:
    return [(await store.get(p)).balance_fen for p in pids]


async def lock_of(redis: aioredis.Redis, pid: str) -> str | None:
    """The account's lock as kept ('' or None: free)."""
    return cast(str | None, await redis.hget(account_key(pid), "lock"))


async def recover_all(steps: Stepwise) -> None:
    """What the recovery loop does once the window has passed: every mark finished."""
    for n in range(PENDING_BUCKETS):
        for marked in await steps.redis.zrange(pending_bucket(n), 0, -1):
            await steps.recover(marked)


async def cut_everywhere(
    arm: Callable[[int], None], call: Callable[[], Awaitable[object]],
    after: Callable[[int], Awaitable[None]],
) -> int:  # fmt: skip
    """`call` cut off after its 1st, 2nd, ... command until it runs through; `after(k)` checks
    each cut. Returns how many places were cut."""
    k = 0
    while True:
        k += 1
        arm(k)
        try:
            await call()
        except Cut:
            arm(0)
            await after(k)
            continue
        arm(0)
        return k - 1


@pytest.mark.parametrize(
    ("recovered", "killed"),
    [(True, False), (False, False), (True, True)],
    ids=["by-recovery", "by-retry-alone", "killed-then-recovered"],
)
async def test_a_family_payment_cut_anywhere_is_finished_once(cutter, recovered, killed):
    # rules S2, S8: a caller cut off at any await (its clean-up runs), or killed there (none
    # does: its locks and mark stay for the recovery loop)
    redis, _, arm = cutter
    redis.dead[0] = killed
    store = AccountStore(redis)
    steps = Stepwise(store, Locks(store, 5_000), 0)
    patient, first, second, _ = await family(store)
    sources = payers_of(patient, first, second)
    current = [f"{patient}-1"]

    def pay() -> Awaitable[Payment]:
        return steps.pay(current[0], EntryKind.SETTLEMENT, patient, sources, 800, DAY, False, "fp")

    async def after(k: int) -> None:
        if recovered:
            await recover_all(steps)
        paid = await pay()  # the caller retries: the same payment, made once (S8)
        assert paid.state == PaymentState.PAID
        assert [s.amount_fen for s in paid.shares] == [300, 200, 300], k
        assert await pay() == paid == await store.payment(current[0])
        assert await balances(store, patient, first, second) == [0, 0, 700], k
        for p, fen in ((patient, 300), (first, 200), (second, 300)):  # back for the next
            await store.credit(p, fen, EntryKind.ADJUSTMENT, "m", "", "")
        current[0] = f"{patient}-{k + 1}"

    places = await cut_everywhere(arm, pay, after)
    assert await balances(store, patient, first, second) == [0, 0, 700]
    assert places >= 8  # every step of the payment was cut after


async def test_a_retry_cut_off_as_it_meets_the_journal_of_an_attempt_killed_frees_its_locks(
    cutter,
):  # invariant 3 of docs/ARCHITECTURE.md: no lock is left held with nothing to free it
    redis, _, arm = cutter
    store = AccountStore(redis)
    steps = Stepwise(store, Locks(store, 200), 0)
    patient, first, second, _ = await family(store)
    sources = payers_of(patient, first, second)

    def pay() -> Awaitable[Payment]:
        return steps.pay("S-killed", EntryKind.SETTLEMENT, patient, sources, 800, DAY, False, "fp")

    redis.dead[0] = True  # the first attempt is killed just after it journaled its plan
    for k in range(1, 30):
        arm(k)
        with pytest.raises(Cut):
            await pay()
        arm(0)
        await asyncio.sleep(0.25)  # its leases run out
        if '"paying"' in (await redis.get("acct:pay:{S-killed}") or ""):
            break
    redis.dead[0] = False
    plan = steps._plan

    async def planned_then_cut(*args: Any) -> Any:
        await plan(*args)  # the retry's plan answers the killed attempt's journal ...
        raise asyncio.CancelledError  # ... and its caller's deadline arrives right then

    steps._plan = planned_then_cut  # type: ignore[method-assign]
    with pytest.raises(asyncio.CancelledError):
        await pay()
    steps._plan = plan  # type: ignore[method-assign]
    assert (await store.payment("S-killed")).state == PaymentState.PAID  # finished at once
    for pid in (patient, first, second):  # and nothing of either attempt still locked
        assert await lock_of(redis, pid) in ("", None), pid
    assert await balances(store, patient, first, second) == [0, 0, 700]


async def test_an_attempt_given_up_while_it_waited_then_cut_off_frees_what_it_took(cutter):
    # invariant 3 of docs/ARCHITECTURE.md: an attempt waiting for a lock past the recovery
    # window is given up (what it held so far released, its mark off); it then takes the lock
    # it waited for and is cut off before it plans: what it took then is freed at once too
    redis, _, _ = cutter
    store = AccountStore(redis)
    steps = Stepwise(store, Locks(store, 5_000), 0)
    patient, first, second, _ = await family(store)
    last = max(patient, first, second)  # the lock it takes last
    assert isinstance(await steps.locks.read(Wanted(last), "another", OWN), Read)

    async def cut_off_at_the_plan(*args: Any) -> Any:
        raise asyncio.CancelledError  # its caller's deadline, as it reaches its plan

    steps._plan = cut_off_at_the_plan  # type: ignore[method-assign]
    paying = asyncio.create_task(steps.pay(
        "S-waited", EntryKind.SETTLEMENT, patient, payers_of(patient, first, second), 800, DAY,
        False, "fp",
    ))  # fmt: skip
    await asyncio.sleep(0.1)  # it holds the others and waits for the last
    await recover_all(steps)  # past the window: given up, what it held released
    await steps.locks.release(last, token="another")
    with pytest.raises(asyncio.CancelledError):
        await paying
    for pid in (patient, first, second):
        assert await lock_of(redis, pid) in ("", None), pid
    assert await balances(store, patient, first, second) == [300, 200, 1_000]


async def test_a_premium_cut_anywhere_is_paid_once_or_given_up_whole(cutter):  # rule A2
    redis, _, arm = cutter
    store = AccountStore(redis)
    steps = Stepwise(store, Locks(store, 5_000), 0)
    _, _, second, resident = await family(store)
    source = [Source(second, f"B-{second}-{resident}")]
    year = [2030]

    def premium(pid: str, fen: int) -> Awaitable[Payment]:
        return steps.pay(pid, EntryKind.PREMIUM, resident, source, fen, DAY, False, "fp",
                         premium=str(year[0]))  # fmt: skip

    async def after_refused(k: int) -> None:  # 5,000 fen: more than he has, never paid
        await recover_all(steps)
        assert await balances(store, second) == [1_000], k
        assert await redis.get(year_key(resident, str(year[0]))) is None, k

    async def refused() -> None:
        with pytest.raises(DomainError) as refusal:
            await premium(f"{resident}-R{year[0]}", 5_000)
        assert refusal.value.reason == "INSUFFICIENT_FUNDS"

    await cut_everywhere(arm, refused, after_refused)

    async def after_paid(k: int) -> None:
        await recover_all(steps)
        paid = await premium(f"{resident}-Y{year[0]}", 100)
        assert [s.amount_fen for s in paid.shares] == [100]
        assert await balances(store, second) == [900], k
        await store.credit(second, 100, EntryKind.ADJUSTMENT, "m", "", "")
        year[0] += 1

    await cut_everywhere(arm, lambda: premium(f"{resident}-Y{year[0]}", 100), after_paid)


async def test_a_cancel_cut_anywhere_refunds_each_share_once(cutter):  # rule S9
    redis, _, arm = cutter
    store = AccountStore(redis)
    steps = Stepwise(store, Locks(store, 5_000), 0)
    patient, first, second, _ = await family(store)
    sources = payers_of(patient, first, second)
    n = [0]

    async def paid() -> str:
        n[0] += 1
        pid = f"{patient}-C{n[0]}"
        await steps.pay(pid, EntryKind.SETTLEMENT, patient, sources, 800, DAY, False, "fp")
        return pid

    current = [await paid()]

    async def after(k: int) -> None:
        if k % 2:
            await recover_all(steps)
        done = await steps.cancel(current[0], "x", "c1", False)
        assert done.state == PaymentState.CANCELLED, k
        assert await steps.cancel(current[0], "x", "c1", False) == done
        assert await balances(store, patient, first, second) == [300, 200, 1_000], k
        current[0] = await paid()

    await cut_everywhere(arm, lambda: steps.cancel(current[0], "x", "c1", False), after)
    assert await balances(store, patient, first, second) == [300, 200, 1_000]


@pytest.mark.parametrize("finished_by", ["relay", "retry"])
async def test_a_binding_across_provinces_cut_anywhere_ends_with_both_sides_agreeing(
    cutter, finished_by
):  # rules B5, B10, B11 (a Guizhou binder, tests/policy.toml)
    redis, _, arm = cutter
    store = BindingStore(redis)
    relay = Lifecycle(store, cast(AccountClient, None), views_due_after_ms=0)  # views: store only

    async def finish(call: Callable[[], Awaitable[object]]) -> None:
        if finished_by == "relay":
            await relay.views.sweep()
        else:
            await call()

    async def agree(b: Binding, active: bool) -> None:
        on_list = await store.payer_ids("43", b.beneficiary_id)
        assert on_list == ([b.binding_id] if active else [])
        assert [x.binding_id for x in await store.bindings_of(b.beneficiary_id, False, True)] == [
            b.binding_id
        ]
        assert await store.views_due("52", 2**62) == []

    current: list[Binding] = []

    def create() -> Awaitable[object]:
        b = Binding(new_binding_id("52", "43"), new_pid("520102"), new_pid(), 1, DAY, "",
                    BindingStatus.ACTIVE, 1_000)  # fmt: skip
        current[:] = [b]
        return store.create(b, 10, "fp", f"CreateBinding:{b.binding_id}")

    async def after_create(k: int) -> None:
        b = current[0]
        retry = lambda: store.create(b, 10, "fp", f"CreateBinding:{b.binding_id}")  # noqa: E731
        if await store.get(b.binding_id) is None:  # cut before the binder's side: not made
            await retry()
        else:
            await finish(retry)
        await agree(b, active=True)

    await cut_everywhere(arm, create, after_create)

    async def after_end(k: int) -> None:
        b = current[0]
        retry = lambda: store.end(b.binding_id, BindingStatus.REMOVED, 2_000)  # noqa: E731
        began = await store.get(b.binding_id)
        if began is not None and began.status == BindingStatus.ACTIVE:  # cut before it began
            await retry()
        else:
            await finish(retry)
        ended = await store.get(b.binding_id)
        assert ended is not None and ended.status == BindingStatus.REMOVED, k
        await agree(b, active=False)
        await create()

    await cut_everywhere(
        arm, lambda: store.end(current[0].binding_id, BindingStatus.REMOVED, 2_000), after_end
    )
