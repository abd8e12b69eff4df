"""Many callers at once on one account: no overdraft, no double application (rule S11, A7)."""

import asyncio
import random

from gongji.account.v1 import account_pb2 as pb
from tests.integration.accounts import all_entries, get, open_account, pay, rid

BALANCE = 100_000


async def test_200_concurrent_payments_never_overdraw_and_the_ledger_adds_up(account):  # S11, A7
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
        paid = await pay(account, pid, amount)
        if rng.random() < 0.5:  # cancelled: every fen back (S9)
            cancel = pb.CancelPaymentRequest(payment_id=paid.payment_id, reason="x",
                                             cancel_request_id=rid())  # fmt: skip
            await account.CancelPayment(cancel, timeout=30)
            return 0
        return sum(s.amount_fen for s in paid.shares)

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
    assert sum(amounts) > BALANCE  # the test did ask for more than there was
    assert a.balance_fen == 0 or sum(committed) < sum(amounts)  # the rest was cash


async def test_concurrent_retries_of_one_credit_apply_it_once(account):
    pid = await open_account(account)
    request = pb.CreditRequest(person_id=pid, amount_fen=333, kind=1, request_id=rid())
    results = await asyncio.gather(*(account.Credit(request, timeout=30) for _ in range(50)))
    assert len({r.entry_id for r in results}) == 1
    assert (await get(account, pid)).balance_fen == 333


async def test_concurrent_payments_with_one_payment_id_pay_once(account):  # rule S8
    pid = await open_account(account, 1_000)
    payment_id = f"T{rid()}"
    paid = await asyncio.gather(*(pay(account, pid, 600, payment_id) for _ in range(30)))
    assert len({p.SerializeToString() for p in paid}) == 1
    assert (await get(account, pid)).balance_fen == 400
    await pay(account, pid, 600, payment_id)  # a later retry replays too
    assert (await get(account, pid)).balance_fen == 400
