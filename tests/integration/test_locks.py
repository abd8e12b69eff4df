"""services.common.locks: owner tokens, leases, fencing tokens, bounded waits."""

import asyncio

import pytest

from services.account.locks import Locks, lock_key
from services.common.errors import DomainError
from tests.support import new_pid


async def test_each_owner_gets_a_higher_fencing_token(redis):
    locks, pid = Locks(redis, lease_ms=2_000), new_pid()
    async with locks.hold([pid], wait_s=1) as first:
        pass
    async with locks.hold([pid], wait_s=1) as second:
        assert second.fences[pid] > first.fences[pid] > 0
    assert await redis.get(lock_key(pid)) is None  # released


async def test_a_busy_lock_times_out_with_lock_timeout(redis):
    locks, pid = Locks(redis, lease_ms=5_000), new_pid()
    async with locks.hold([pid], wait_s=1):
        with pytest.raises(DomainError) as info:
            async with locks.hold([pid], wait_s=0.2):
                pass
    assert info.value.reason == "LOCK_TIMEOUT"


async def test_a_waiter_gets_the_lock_when_it_is_released(redis):
    locks, pid = Locks(redis, lease_ms=5_000), new_pid()
    order: list[str] = []

    async def second() -> None:
        async with locks.hold([pid], wait_s=2):
            order.append("second")

    async with locks.hold([pid], wait_s=1):
        task = asyncio.create_task(second())
        await asyncio.sleep(0.1)
        order.append("first done")
    await task
    assert order == ["first done", "second"]


async def test_locks_are_taken_in_sorted_order_so_overlapping_sets_do_not_deadlock(redis):
    locks = Locks(redis, lease_ms=5_000)
    a, b, c = new_pid(), new_pid(), new_pid()
    done = 0

    async def work(ids: list[str]) -> None:
        nonlocal done
        for _ in range(20):
            async with locks.hold(ids, wait_s=5):
                await asyncio.sleep(0)
        done += 1

    await asyncio.wait_for(asyncio.gather(work([a, b]), work([b, a]), work([c, a, b])), 20)
    assert done == 3


async def test_an_expired_lease_lets_another_owner_in_with_a_higher_fence(redis):
    locks, pid = Locks(redis, lease_ms=150), new_pid()
    cm = locks.hold([pid], wait_s=1)
    first = await cm.__aenter__()
    await redis.pexpire(lock_key(pid), 1)  # the lease runs out as if the holder were paused
    await asyncio.sleep(0.01)
    async with Locks(redis, lease_ms=5_000).hold([pid], wait_s=1) as second:
        assert second.fences[pid] > first.fences[pid]
        await asyncio.sleep(0.2)  # the first holder's keeper tries to extend and finds it lost
        assert first.lost
        await cm.__aexit__(None, None, None)  # its release must not delete the new owner's lock
        assert await redis.get(lock_key(pid)) == second.owner


async def test_the_lease_is_extended_while_the_holder_works(redis):
    locks, pid = Locks(redis, lease_ms=300), new_pid()
    async with locks.hold([pid], wait_s=1) as held:
        await asyncio.sleep(1.0)  # > 3 leases
        assert await redis.get(lock_key(pid)) == held.owner
        assert not held.lost


async def test_a_holder_whose_first_lease_ran_out_while_it_waited_for_the_second_is_refused(
    redis,
):  # the first lock may have gone to someone else meanwhile: acting on it would be unsafe
    short, first, second = Locks(redis, lease_ms=100), new_pid(), new_pid()
    a, b = sorted([first, second])
    other = Locks(redis, lease_ms=5_000)
    async with other.hold([b], wait_s=1):
        waiter = asyncio.ensure_future(_hold_both(short, a, b))
        await asyncio.sleep(0.3)  # a's 100 ms lease runs out while the waiter waits for b
    with pytest.raises(DomainError) as info:
        await waiter
    assert info.value.reason == "LOCK_TIMEOUT"
    assert await redis.get(lock_key(b)) is None  # what it took was released


async def _hold_both(locks: Locks, a: str, b: str) -> None:
    async with locks.hold([a, b], wait_s=2) as held:
        held.check()
