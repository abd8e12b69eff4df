"""Many callers at once on one account: no overdraft, no double application (rule S11, A7)."""

import asyncio
import random

from gongji.account.v1 import account_pb2 as pb
from tests.integration.accounts import all_entries, get, open_account, rid

BALANCE = 100_000


async def test_200_concurrent_holds_never_overdraw_and_the_ledger_adds_up(account):  # S11, A7
    pid = await open_account(account, BALANCE)
    rng = random.Random(20261123)
    amounts = [rng.randrange(1, 2_000) for _ in range(200)]
    lowest_available = BALANCE
    stop = asyncio.Event()

    async def watch() -> None:
        nonlocal lowest_available
        while not stop.is_set():
            lowest_available = min(lowest_available, (await get(account, pid)).available_fen)

    async def one(amount: int) -> int:
        spec = pb.HoldSpec(hold_id=rid(), person_id=pid, amount_fen=amount, fencing_token=1)
        request = pb.PlaceHoldsRequest(
            holds=[spec], kind=pb.ENTRY_KIND_SETTLEMENT, request_id=rid()
        )
        try:
            placed = await account.PlaceHolds(request, timeout=30)
        except Exception:
            return 0
        ref = pb.HoldRef(hold_id=spec.hold_id, person_id=pid)
        if rng.random() < 0.5:
            await account.VoidHolds(pb.VoidHoldsRequest(holds=[ref], request_id=rid()), timeout=30)
            return 0
        await account.CommitHolds(pb.CommitHoldsRequest(holds=[ref], request_id=rid()), timeout=30)
        return placed.holds[0].amount_fen

    watcher = asyncio.create_task(watch())
    committed = await asyncio.gather(*(one(a) for a in amounts))
    stop.set()
    await watcher

    a = await get(account, pid)
    entries = await all_entries(account, pid)
    assert lowest_available >= 0
    assert a.held_fen == 0
    assert a.balance_fen == BALANCE - sum(committed) >= 0
    assert a.balance_fen == sum(e.amount_fen for e in entries)
    assert len(entries) == 1 + sum(1 for c in committed if c)
    assert sum(amounts) > BALANCE  # the test did ask for more than there was


async def test_concurrent_retries_of_one_credit_apply_it_once(account):
    pid = await open_account(account)
    request = pb.CreditRequest(person_id=pid, amount_fen=333, kind=1, request_id=rid())
    results = await asyncio.gather(*(account.Credit(request, timeout=30) for _ in range(50)))
    assert len({r.entry_id for r in results}) == 1
    assert (await get(account, pid)).balance_fen == 333


async def test_concurrent_holds_with_one_hold_id_reserve_once(account):
    pid = await open_account(account, 1_000)
    spec = pb.HoldSpec(hold_id=rid(), person_id=pid, amount_fen=600, fencing_token=1)

    async def place() -> None:
        request = pb.PlaceHoldsRequest(holds=[spec], kind=pb.ENTRY_KIND_PREMIUM, request_id=rid())
        await account.PlaceHolds(request, timeout=30)

    await asyncio.gather(*(place() for _ in range(30)))
    assert (await get(account, pid)).held_fen == 600
    await place()  # a later retry replays too
    assert (await get(account, pid)).held_fen == 600
