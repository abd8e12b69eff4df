"""services.account.locks: owner tokens, leases, exact fencing tokens, bounded waits, and a
holder overtaken after its lease ran out refused by the fence."""

import asyncio

import pytest

from services.account.locks import Locks
from services.account.store import AccountStore, account_key
from services.common.enums import EntryKind, InsuranceType
from services.common.errors import DomainError
from tests.support import new_pid

TWO_TO_53 = 2**53


async def opened(store: AccountStore, balance: int = 0) -> str:
    pid = new_pid()
    await store.open(pid, "甲", InsuranceType.EMPLOYEE, "430102", "", "")
    if balance:
        await store.credit(pid, balance, EntryKind.ALLOCATION, "m", "", "")
    return pid


async def test_each_owner_gets_a_higher_fencing_token(redis):
    store = AccountStore(redis)
    locks, pid = Locks(store, lease_ms=2_000), await opened(store)
    async with locks.hold([pid], wait_s=1) as first:
        pass
    async with locks.hold([pid], wait_s=1) as second:
        assert int(second.fences[pid]) == int(first.fences[pid]) + 1 > 1


async def test_fencing_tokens_keep_counting_exactly_past_two_to_the_53(redis):
    # a Lua number is a double: counted there, three holders past 2^53 shared one token, and a
    # stale holder was never refused again
    store = AccountStore(redis)
    locks, pid = Locks(store, lease_ms=2_000), await opened(store, 10_000)
    await redis.hset(account_key(pid), "fence", str(TWO_TO_53 - 2))
    seen = []
    for _ in range(3):
        async with locks.hold([pid], wait_s=1) as held:
            seen.append(held.fences[pid])
    assert seen == [str(TWO_TO_53 - 1), str(TWO_TO_53), str(TWO_TO_53 + 1)]
    stale = seen[1]  # a holder of 2^53, overtaken: its purchase is refused
    with pytest.raises(DomainError) as refusal:
        await store.purchase(pid, 100, 40, "PICC-HN", "POL-1", stale, 2026, True, 1, "", "")
    assert refusal.value.reason == "LOCK_TIMEOUT"
    assert (await store.get(pid)).balance_fen == 10_000


async def test_a_busy_lock_times_out_with_lock_timeout(redis):
    store = AccountStore(redis)
    locks, pid = Locks(store, lease_ms=5_000), await opened(store)
    async with locks.hold([pid], wait_s=1):
        with pytest.raises(DomainError) as refusal:
            async with locks.hold([pid], wait_s=0.2):
                pass
    assert refusal.value.reason == "LOCK_TIMEOUT"


async def test_a_waiter_gets_the_lock_when_it_is_released(redis):
    store = AccountStore(redis)
    locks, pid = Locks(store, lease_ms=5_000), await opened(store)
    order: list[str] = []

    async def second() -> None:
        async with locks.hold([pid], wait_s=2):
            order.append("second")

    async with locks.hold([pid], wait_s=1):
        waiter = asyncio.ensure_future(second())
        await asyncio.sleep(0.1)
        order.append("first done")
    await waiter
    assert order == ["first done", "second"]


async def test_locks_are_taken_in_sorted_order_so_overlapping_sets_do_not_deadlock(redis):
    store = AccountStore(redis)
    locks = Locks(store, lease_ms=5_000)
    a, b, c = [await opened(store) for _ in range(3)]
    done = 0

    async def hold(ids: list[str]) -> None:
        nonlocal done
        for _ in range(20):
            async with locks.hold(ids, wait_s=5):
                done += 1

    await asyncio.gather(hold([a, b]), hold([b, a]), hold([c, b, a]), hold([a, c]))
    assert done == 80


async def test_a_holder_whose_lease_ran_out_is_overtaken_and_refused(redis):
    # the fencing timeline (locks.py): A locks, is paused past its lease; B locks (a higher
    # fence) and buys; A wakes up and buys with its fence: refused, and only B's purchase is on
    # the ledger
    store = AccountStore(redis)
    pid = await opened(store, 10_000)
    async with Locks(store, lease_ms=100).hold([pid], wait_s=1) as a:
        await asyncio.sleep(0.2)  # paused past the lease
        async with Locks(store, lease_ms=5_000).hold([pid], wait_s=1) as b:
            assert int(b.fences[pid]) > int(a.fences[pid])
            await store.purchase(pid, 100, 40, "PICC-HN", "B", b.fences[pid], 2026, True, 1, "",
                                 "")  # fmt: skip
        with pytest.raises(DomainError) as refusal:
            await store.purchase(pid, 100, 40, "PICC-HN", "A", a.fences[pid], 2026, True, 1, "",
                                 "")  # fmt: skip
    assert refusal.value.reason == "LOCK_TIMEOUT"
    assert (await store.get(pid)).balance_fen == 9_900


async def test_an_account_that_does_not_exist_is_not_locked(redis):
    store = AccountStore(redis)
    locks, nobody = Locks(store, lease_ms=5_000), new_pid()
    async with locks.hold([nobody], wait_s=1) as held:
        assert held.fences == {nobody: ""}
    assert not await redis.exists(account_key(nobody))
