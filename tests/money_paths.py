"""The money paths the fault tests walk: Settle, CancelSettlement, ReverseSettlement and
PayResidentPremium. Each scenario prepares a family, makes the call that a fault will cut, and
afterwards checks, through the public API only, that the key answers (a retry of the same call
gets a final answer) and that every fen is where it should be."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from gongji.account.v1 import account_pb2 as apb
from gongji.settlement.v1 import settlement_pb2 as spb
from services.common.rpc import reason_of
from tests.integration.accounts import all_entries, get, rid
from tests.integration.bindings import CHILD, create, person
from tests.integration.test_settlement import HOSPITAL, bill, family

IN_FLIGHT = (spb.SETTLEMENT_STATUS_PENDING, spb.SETTLEMENT_STATUS_COMMITTING)


@dataclasses.dataclass
class Stubs:
    account: Any
    binding: Any
    settlement: Any


@dataclasses.dataclass
class Case:
    """One prepared call: the people whose money it moves and their balances before it."""

    call: Callable[[Any, float], Awaitable[Any]]  # (settlement stub, timeout) -> the call
    check: Callable[[Stubs], Awaitable[None]]
    people: list[str]
    before: dict[str, int]


async def balances(account: Any, people: list[str]) -> dict[str, int]:
    return {p: (await get(account, p)).balance_fen for p in people}


async def books_balance(account: Any, people: list[str]) -> None:
    """Invariants 1 and 3: ledger sums to the balance, nothing negative, nothing held."""
    for p in people:
        a = await get(account, p)
        entries = await all_entries(account, p)
        assert a.balance_fen == sum(e.amount_fen for e in entries) >= 0, p
        assert a.held_fen == 0, p


async def settled_state(settlement: Any, medins_setl_id: str, seconds: float = 20) -> int:
    """The settlement's status once nothing is in flight for it (0 = the key is free)."""
    request = spb.GetSettlementRequest(institution_id=HOSPITAL, medins_setl_id=medins_setl_id)
    for _ in range(int(seconds / 0.05)):
        try:
            s = await settlement.GetSettlement(request, timeout=5)
        except grpc.aio.AioRpcError as e:
            if e.code() != grpc.StatusCode.NOT_FOUND:
                raise
            return 0
        if s.status not in IN_FLIGHT:
            return int(s.status)
        await asyncio.sleep(0.05)
    raise AssertionError("the settlement stayed in flight")


async def retry(call: Callable[[], Awaitable[Any]], seconds: float = 20) -> Any:
    """A caller's retry: again while the answer is 'in flight, retry'."""
    for _ in range(int(seconds / 0.05)):
        try:
            return await call()
        except grpc.aio.AioRpcError as e:
            if reason_of(e) not in ("SETTLEMENT_IN_PROGRESS", "REQUEST_IN_PROGRESS"):
                raise
        await asyncio.sleep(0.05)
    raise AssertionError("the call never got a final answer")


def debits(s: spb.Settlement) -> dict[str, int]:
    return {leg.payer_id: leg.amount_fen for leg in s.legs}


async def settle_case(stubs: Stubs) -> Case:
    child, dad, mum = await family(stubs.account, stubs.binding)
    people = [child, dad, mum]
    before = await balances(stubs.account, people)
    request = bill(child, 30_000)

    async def check(s: Stubs) -> None:
        status = await settled_state(s.settlement, request.medins_setl_id)
        try:  # the key answers: the first result, an abort, or (if it was freed) a settlement
            final = await retry(lambda: s.settlement.Settle(request, timeout=10))
        except grpc.aio.AioRpcError as e:
            assert (status, reason_of(e)) == (
                spb.SETTLEMENT_STATUS_ABORTED,
                "SETTLEMENT_ABORTED",
            ), (status, e.details())
            paid: dict[str, int] = {}
        else:
            assert final.status == spb.SETTLEMENT_STATUS_SETTLED
            paid = debits(final)
        after = await balances(s.account, people)
        assert after == {p: before[p] - paid.get(p, 0) for p in people}
        await books_balance(s.account, people)

    return Case(lambda st, t: st.Settle(request, timeout=t), check, people, before)


async def cancel_case(stubs: Stubs, reverse: bool = False) -> Case:
    child, dad, mum = await family(stubs.account, stubs.binding)
    people = [child, dad, mum]
    before = await balances(stubs.account, people)
    request = bill(child, 30_000)
    settled = await stubs.settlement.Settle(request, timeout=10)
    cancel = spb.CancelSettlementRequest(settlement_id=settled.settlement_id, reason="wrong",
                                         request_id=rid())  # fmt: skip
    reversal = spb.ReverseSettlementRequest(institution_id=HOSPITAL, request_id=rid(),
                                            medins_setl_id=request.medins_setl_id)  # fmt: skip

    def call(st: Any, timeout: float = 10) -> Awaitable[Any]:
        if reverse:
            return st.ReverseSettlement(reversal, timeout=timeout)
        return st.CancelSettlement(cancel, timeout=timeout)

    async def check(s: Stubs) -> None:
        await settled_state(s.settlement, request.medins_setl_id)
        final = await retry(lambda: call(s.settlement))
        status = final.settlement.status if reverse else final.status
        assert status == spb.SETTLEMENT_STATUS_CANCELLED
        assert await balances(s.account, people) == before  # every leg refunded once
        await books_balance(s.account, people)

    return Case(call, check, people, before)


async def premium_case(stubs: Stubs) -> Case:
    parent = await person(stubs.account, 1970, 50_000)
    kid = await person(stubs.account, 2005, 0, resident=True)
    await stubs.binding.CreateBinding(create(parent, kid, CHILD))
    year = dt.date.today().year
    request = spb.PayResidentPremiumRequest(payer_id=parent, beneficiary_id=kid, year=year,
                                            amount_fen=38_000, request_id=rid())  # fmt: skip

    async def check(s: Stubs) -> None:
        paid = await retry(lambda: s.settlement.PayResidentPremium(request, timeout=10))
        assert paid.amount_fen == 38_000
        assert (await get(s.account, parent)).balance_fen == 12_000  # paid once
        premiums = [e for e in await all_entries(s.account, parent)
                    if e.kind == apb.ENTRY_KIND_PREMIUM]  # fmt: skip
        assert len(premiums) == 1
        await books_balance(s.account, [parent])

    return Case(lambda st, t: st.PayResidentPremium(request, timeout=t), check, [parent],
                {parent: 50_000})  # fmt: skip


async def reverse_case(stubs: Stubs) -> Case:
    return await cancel_case(stubs, reverse=True)


PATHS: dict[str, Callable[[Stubs], Awaitable[Case]]] = {
    "Settle": settle_case,
    "CancelSettlement": cancel_case,
    "ReverseSettlement": reverse_case,
    "PayResidentPremium": premium_case,
}
