"""Jepsen-bank style: thousands of settlements and cancels from many callers at once over
families whose payers overlap. Money is never created, lost or overdrawn (rules S11, S12, A7;
invariants 1 and 2 of docs/ARCHITECTURE.md)."""

from __future__ import annotations

import asyncio
import collections
import os
import random
import time

import grpc

from gongji.settlement.v1 import settlement_pb2 as spb
from tests.integration.accounts import all_entries, get, rid
from tests.integration.bindings import CHILD, PARENT, create, person
from tests.integration.test_settlement import bill

CALLERS = 32
SETTLEMENTS = int(os.environ.get("GONGJI_BANK_SETTLEMENTS", "2000"))


async def families(account, binding) -> tuple[list[str], list[str]]:
    """Two parents bound by three children each; a grandmother bound as payer by both parents;
    each child also pays for the grandmother (a parent bound by several children)."""
    grandma = await person(account, 1940, 30_000)
    parents = [await person(account, 1965, 40_000), await person(account, 1967, 40_000)]
    children = [await person(account, 1990 + i, 5_000) for i in range(3)]
    for parent in parents:
        await binding.CreateBinding(create(grandma, parent, CHILD))
        for child in children:
            await binding.CreateBinding(create(parent, child, CHILD))
    for child in children:
        await binding.CreateBinding(create(child, grandma, PARENT))
    return [grandma, *parents, *children], [grandma, *parents, *children]


async def test_concurrent_settlements_and_cancels_conserve_money(account, binding, settlement):
    everyone, patients = await families(account, binding)
    initial = sum([(await get(account, p)).balance_fen for p in everyone])
    rng = random.Random(7)
    budget = iter(range(SETTLEMENTS))
    done: list[spb.Settlement] = []
    cancelled: set[str] = set()
    refusals: collections.Counter[str] = collections.Counter()

    async def caller() -> None:
        mine: list[spb.Settlement] = []
        for _ in budget:
            if mine and rng.random() < 0.3:
                s = mine.pop(rng.randrange(len(mine)))
                cancel = spb.CancelSettlementRequest(
                    settlement_id=s.settlement_id, request_id=rid()
                )
                try:
                    await settlement.CancelSettlement(cancel, timeout=30)
                    cancelled.add(s.settlement_id)
                except grpc.aio.AioRpcError as e:
                    refusals[str(e.code())] += 1
                continue
            try:
                s = await settlement.Settle(bill(rng.choice(patients), rng.randrange(1, 6_000)),
                                            timeout=30)  # fmt: skip
            except grpc.aio.AioRpcError as e:
                refusals[str(e.code())] += 1
                continue
            done.append(s)
            mine.append(s)

    started = time.monotonic()
    await asyncio.wait_for(asyncio.gather(*(caller() for _ in range(CALLERS))), 400)
    elapsed = time.monotonic() - started
    print(f"bank: {len(done)} settled, {len(cancelled)} cancelled, refused {dict(refusals)}, "
          f"{elapsed:.1f} s")  # fmt: skip
    assert len(done) + len(cancelled) + sum(refusals.values()) >= SETTLEMENTS * 0.99

    ledgers = {p: await all_entries(account, p) for p in everyone}
    accounts = {p: await get(account, p) for p in everyone}
    for p, entries in ledgers.items():  # invariant 1 (and 3: nothing held)
        assert accounts[p].balance_fen == sum(e.amount_fen for e in entries) >= 0
        assert accounts[p].held_fen == 0
        assert all(e.balance_after_fen >= 0 for e in entries)
    every = [e for entries in ledgers.values() for e in entries]
    debits = collections.Counter(
        (e.person_id, e.reference, e.amount_fen) for e in every if e.amount_fen < 0
    )
    refunds = collections.Counter(
        (e.person_id, e.reference, e.amount_fen) for e in every if e.kind == 6
    )
    spent = 0
    for s in done:  # invariant 2: exactly one debit per leg, one refund per cancelled leg
        assert s.personal_burden_fen == s.acct_pay_fen + s.acct_mulaid_pay_fen + s.cash_pay_fen
        assert sum(leg.amount_fen for leg in s.legs) == s.acct_pay_fen + s.acct_mulaid_pay_fen
        for leg in s.legs:
            assert debits[(leg.payer_id, s.settlement_id, -leg.amount_fen)] == 1
            refund_key = (leg.payer_id, f"cancel {s.settlement_id}", leg.amount_fen)
            assert refunds[refund_key] == (1 if s.settlement_id in cancelled else 0)
        if s.settlement_id not in cancelled:
            spent += s.acct_pay_fen + s.acct_mulaid_pay_fen
    assert sum(a.balance_fen for a in accounts.values()) == initial - spent  # 1 and 2 together
    assert sum(debits.values()) == sum(len(s.legs) for s in done)
