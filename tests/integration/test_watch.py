"""The live family watch (rule A10) through the real gRPC APIs: a binder sees every payment his
account makes, for himself and for relatives, their refunds and his premium payments, in ledger
order, and nothing else; a cursor resumes a stream without loss or repetition; refusals."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc

from gongji.account.v1 import account_pb2 as pb
from gongji.account.v1.account_pb2_grpc import AccountServiceStub
from gongji.settlement.v1 import settlement_pb2 as spb
from gongji.settlement.v1.settlement_pb2_grpc import SettlementServiceStub
from services.account.followers import Followers
from services.account.server import build as build_account
from services.client import Client
from services.common.server import Running, create_server
from services.settlement.cursor import START_HEADER
from services.settlement.server import build as build_settlement
from tests.integration.accounts import credit, get, rid
from tests.integration.bindings import CHILD, create, person
from tests.integration.test_settlement import HOSPITAL, bill
from tests.integration.test_special import purchase
from tests.integration.watching import READ_S, events, watch, watched_entries
from tests.support import TOKENS, channel, eventually, new_pid, refused, settings

SETTLEMENT, REFUND, PREMIUM = (
    spb.PAYMENT_EVENT_KIND_SETTLEMENT, spb.PAYMENT_EVENT_KIND_REFUND,
    spb.PAYMENT_EVENT_KIND_PREMIUM,
)  # fmt: skip


def shown(e: spb.PaymentEvent) -> tuple[object, ...]:
    return (e.kind, e.amount_fen, e.balance_after_fen, e.settlement_id, e.patient_id,
            e.institution_id)  # fmt: skip


async def test_a10_a_binder_sees_his_own_and_his_relatives_payments_refunds_and_premiums(
    account, binding, settlement
):  # rule A10 (and S2, S9, A2 as he sees them)
    dad = await person(account, 1965, 20_000)
    son = await person(account, 1992, 1_000)  # his own account pays first
    kid = await person(account, 2012, 0, resident=True)
    for relative in (son, kid):
        await binding.CreateBinding(create(dad, relative, CHILD), timeout=10)
    call = await watch(settlement, dad)

    own = await settlement.Settle(bill(dad, 3_000), timeout=10)
    answered = time.monotonic()
    [first] = await events(call, 1)
    assert time.monotonic() - answered < 1.0, "an entry reaches its watcher within a second"
    await credit(account, dad, 500)  # neither a credit nor commercial insurance is watched
    await account.PurchaseCommercialInsurance(purchase(dad, 800, "POL-W"), timeout=10)
    await account.CancelCommercialInsurance(
        pb.CancelCommercialInsuranceRequest(person_id=dad, policy_no="POL-W", request_id=rid()),
        timeout=10,
    )
    for_son = await settlement.Settle(bill(son, 5_000), timeout=10)  # son 1,000 + dad 4,000
    cancelled = await settlement.CancelSettlement(
        spb.CancelSettlementRequest(settlement_id=for_son.settlement_id, reason="退费",
                                    request_id=rid()), timeout=10,
    )  # fmt: skip
    year = dt.date.today().year
    premium = await settlement.PayResidentPremium(
        spb.PayResidentPremiumRequest(payer_id=dad, beneficiary_id=kid, year=year,
                                      amount_fen=3_800, request_id=rid()), timeout=10,
    )  # fmt: skip
    got = [first, *await events(call, 3)]
    call.cancel()

    assert [shown(e) for e in got] == [
        (SETTLEMENT, -3_000, 17_000, own.settlement_id, dad, HOSPITAL),
        (SETTLEMENT, -4_000, 13_500, for_son.settlement_id, son, HOSPITAL),
        (REFUND, 4_000, 17_500, for_son.settlement_id, son, HOSPITAL),
        (PREMIUM, -3_800, 13_700, premium.payment_id, kid, ""),
    ]
    assert got[0].entry_id == own.legs[0].entry_id
    assert got[1].entry_id == for_son.legs[1].entry_id
    assert got[3].entry_id == premium.entry_id
    # the entry's time (under a cluster a share is written a moment after the payment's time)
    for event, at in ((got[0], own.settled_at), (got[2], cancelled.cancelled_at)):
        assert abs(event.occurred_at.ToMilliseconds() - at.ToMilliseconds()) < 1_000
    assert {e.person_id for e in got} == {dad}
    ledger = await watched_entries(account, dad)
    commercial = ledger[-4]
    assert [e.entry_id for e in ledger[-5:]] == [
        got[0].entry_id, commercial.entry_id, got[1].entry_id, got[2].entry_id, got[3].entry_id,
    ]  # fmt: skip
    assert commercial.reference == "PICC-HN:POL-W:cancel"  # a commercial refund: not shown
    assert (await get(account, dad)).balance_fen == 13_700


async def test_a10_a_cursor_resumes_right_after_its_event(account, settlement):  # rule A10
    me = await person(account, 1970, 50_000)
    call = await watch(settlement, me)
    start = dict(await call.initial_metadata())[START_HEADER]  # where the stream began
    made = [await settlement.Settle(bill(me, 100 + i), timeout=10) for i in range(3)]
    seen = await events(call, 2)
    call.cancel()
    made += [await settlement.Settle(bill(me, 200 + i), timeout=10) for i in range(2)]

    resumed = await watch(settlement, me, seen[-1].cursor)
    rest = await events(resumed, 3)
    later = await settlement.Settle(bill(me, 300), timeout=10)
    [last] = await events(resumed, 1)
    resumed.cancel()
    got = [e.settlement_id for e in [*seen, *rest, last]]
    assert got == [s.settlement_id for s in [*made, later]], "nothing lost, nothing twice"
    assert [e.amount_fen for e in rest] == [-102, -200, -201]
    assert len({e.cursor for e in [*seen, *rest, last]}) == 6
    from_start = await watch(settlement, me, start)  # cut off before its first event
    again = await events(from_start, 6)
    from_start.cancel()
    assert [e.cursor for e in again] == [e.cursor for e in [*seen, *rest, last]]


async def test_a10_under_load_the_watch_shows_the_ledger_as_it_is(
    account, binding, settlement
):  # rules A10, S11: many bills at once draw on the watched account
    dad = await person(account, 1960, 1_000_000)
    kids = [await person(account, 1990 + i, 0) for i in range(3)]
    for kid in kids:
        await binding.CreateBinding(create(dad, kid, CHILD), timeout=10)
    call = await watch(settlement, dad)

    async def bills(patient: str, n: int) -> None:
        for i in range(n):
            s = await settlement.Settle(bill(patient, 1_000 + i), timeout=20)
            if i % 3 == 0:
                await settlement.CancelSettlement(
                    spb.CancelSettlementRequest(settlement_id=s.settlement_id, reason="x",
                                                request_id=rid()), timeout=20,
                )  # fmt: skip

    await asyncio.gather(*(bills(p, 8) for p in (dad, *kids)))
    expected = await watched_entries(account, dad)
    got = await events(call, len(expected))
    call.cancel()
    assert len(expected) == 4 * (8 + 3)
    assert [e.entry_id for e in got] == [e.entry_id for e in expected]
    assert [(e.amount_fen, e.balance_after_fen) for e in got] == [
        (e.amount_fen, e.balance_after_fen) for e in expected
    ]


async def test_a10_refusals_unknown_person_bad_and_foreign_cursors(account, settlement):
    # rule A10
    me, other = await person(account, 1970, 10_000), await person(account, 1971, 10_000)
    call = await watch(settlement, other)
    await settlement.Settle(bill(other, 100), timeout=10)
    [theirs] = await events(call, 1)
    call.cancel()

    async def first(person_id: str, cursor: str = "") -> tuple[grpc.StatusCode, str]:
        request = spb.WatchPaymentsRequest(person_id=person_id, cursor=cursor)
        stream = settlement.WatchPayments(request)
        return await refused(asyncio.wait_for(stream.read(), READ_S))

    bad = (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT")
    assert await first(new_pid()) == (grpc.StatusCode.NOT_FOUND, "ACCOUNT_NOT_FOUND")
    assert await first("430102198005170013") == (
        grpc.StatusCode.INVALID_ARGUMENT, "INVALID_PERSON_ID",
    )  # fmt: skip
    assert await first(me, theirs.cursor) == bad  # another person's stream
    for malformed in ("x", "w1.0.000000000000", theirs.cursor + "0", "w2" + theirs.cursor[2:]):
        assert await first(other, malformed) == bad, malformed
    _, _, tag = theirs.cursor.split(".")
    assert await first(other, f"w1.99.{tag}") == bad  # beyond the end of his ledger
    resumed = await watch(settlement, other, theirs.cursor)  # his own cursor is good
    resumed.cancel()


async def test_a10_a_citizen_watches_his_own_account_and_no_one_else_s(
    account, settlement, addresses
):  # rule A10, API.md "Who may call what"
    me, other = await person(account, 1970, 10_000), await person(account, 1971, 10_000)
    async with channel(addresses["settlement"], "citizen", me) as ch:
        as_me = SettlementServiceStub(ch)
        call = await watch(as_me, me)
        paid = await settlement.Settle(bill(me, 100), timeout=10)
        [seen] = await events(call, 1)
        call.cancel()
        assert seen.settlement_id == paid.settlement_id
        theirs = as_me.WatchPayments(spb.WatchPaymentsRequest(person_id=other))
        assert await refused(asyncio.wait_for(theirs.read(), READ_S)) == (
            grpc.StatusCode.PERMISSION_DENIED, "PERMISSION_DENIED",
        )  # fmt: skip


@dataclasses.dataclass
class _Own:
    account: Any
    settlement: Any
    accounts: Running  # the servers, which a test may stop
    settlements: Running
    followers: Followers  # the account service's waiting long polls


@contextlib.asynccontextmanager
async def _own(redis_url: str) -> AsyncIterator[_Own]:
    """An account and a settlement service of their own."""
    account_app = await build_account(settings(redis_url))
    accounts = await create_server("127.0.0.1:0", account_app)
    settlement_app = await build_settlement(
        settings(redis_url, "settlement", account_addr=f"127.0.0.1:{accounts.port}")
    )
    settlements = await create_server("127.0.0.1:0", settlement_app)
    a_channel = channel(f"127.0.0.1:{accounts.port}")
    s_channel = channel(f"127.0.0.1:{settlements.port}")
    try:
        yield _Own(
            AccountServiceStub(a_channel), SettlementServiceStub(s_channel), accounts,
            settlements, account_app.services[0].servicer.followers,
        )  # fmt: skip
    finally:
        for ch in (a_channel, s_channel):
            await ch.close()
        for running, app in ((settlements, settlement_app), (accounts, account_app)):
            await running.stop(0.2)
            assert app.close is not None
            await app.close()


async def test_a10_a_watch_that_goes_away_leaves_nothing_waiting(redis_url):  # rule A10
    async with _own(redis_url) as own:
        me = await person(own.account, 1970, 10_000)
        calls = [await watch(own.settlement, me) for _ in range(5)]
        await eventually(
            lambda: own.followers.waiting() == 5, READ_S, "each stream waits at the account"
        )
        for call in calls:
            call.cancel()
        await eventually(
            lambda: own.followers.waiting() == 0, READ_S, "a cancelled stream's wait is gone"
        )


async def test_a10_a_draining_server_ends_its_streams_with_unavailable(redis_url):  # rule A10
    async with _own(redis_url) as own:
        me = await person(own.account, 1970, 10_000)
        call = await watch(own.settlement, me)
        started = time.monotonic()
        stopping = asyncio.create_task(own.settlements.stop(5))
        assert await refused(asyncio.wait_for(call.read(), READ_S)) == (
            grpc.StatusCode.UNAVAILABLE, "SERVER_DRAINING",
        )  # fmt: skip
        await stopping
        assert time.monotonic() - started < 2, "a watch does not hold up the drain"


async def _settled_once_back(settlement, request: spb.SettleRequest) -> spb.Settlement:
    """A caller's Settle right after a peer's restart: again (the same bill, so at most once)
    while the answer is UNAVAILABLE, as API.md "Deadlines and retries" says a caller may, for up
    to 10 s."""
    for _ in range(50):
        try:
            return await settlement.Settle(request, timeout=10)
        except grpc.aio.AioRpcError as e:
            if e.code() != grpc.StatusCode.UNAVAILABLE:
                raise
        await asyncio.sleep(0.2)
    raise AssertionError("the settlement service never reached the restarted account service")


async def test_a10_a_watch_rides_over_a_restart_of_the_account_service(redis_url):
    async with _own(redis_url) as own:  # rule A10
        me = await person(own.account, 1970, 10_000)
        call = await watch(own.settlement, me)
        await eventually(
            lambda: own.followers.waiting() == 1, READ_S, "the stream waits at the account"
        )
        started = time.monotonic()
        await own.accounts.stop(5)  # the drain answers the waiting long poll at once
        assert time.monotonic() - started < 2, "a long poll does not hold up the drain"
        assert own.followers.waiting() == 0
        app = await build_account(settings(redis_url))
        again = await create_server(f"127.0.0.1:{own.accounts.port}", app)
        try:
            paid = await _settled_once_back(own.settlement, bill(me, 100))
            [seen] = await events(call, 1)  # the same stream, asking the new process
            assert seen.settlement_id == paid.settlement_id
            call.cancel()
        finally:
            await again.stop(0.2)
            assert app.close is not None
            await app.close()


async def test_a10_the_python_client_resumes_a_watch_after_a_drain(redis_url):  # rule A10
    async with _own(redis_url) as own:
        me = await person(own.account, 1970, 10_000)
        probe = await watch(own.settlement, me)
        start = dict(await probe.initial_metadata())[START_HEADER]
        probe.cancel()
        address = f"127.0.0.1:{own.settlements.port}"
        client = Client.connect(TOKENS.mint("service", "tests", 600), {"settlement": address})
        seen: asyncio.Queue[spb.PaymentEvent] = asyncio.Queue()

        async def read() -> None:
            async for event in client.watch_payments(me, start):
                seen.put_nowait(event)

        reader = asyncio.create_task(read())
        try:
            first = await own.settlement.Settle(bill(me, 100), timeout=10)
            assert (await asyncio.wait_for(seen.get(), READ_S)).settlement_id == (
                first.settlement_id
            )
            await own.settlements.stop(0.5)  # the stream ends: SERVER_DRAINING
            peer = f"127.0.0.1:{own.accounts.port}"
            app = await build_settlement(settings(redis_url, "settlement", account_addr=peer))
            again = await create_server(address, app)
            try:
                async with channel(address) as ch:
                    second = await SettlementServiceStub(ch).Settle(bill(me, 200), timeout=10)
                got = await asyncio.wait_for(seen.get(), READ_S)
                assert got.settlement_id == second.settlement_id, "resumed after the first"
                assert seen.empty()
            finally:
                reader.cancel()
                await again.stop(0.2)
                assert app.close is not None
                await app.close()
        finally:
            reader.cancel()
            await client.close()
