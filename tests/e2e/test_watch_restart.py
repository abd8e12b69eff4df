"""Rule A10 across a restart: a watch ends with UNAVAILABLE when its settlement service process
drains (SIGTERM), and its last cursor, given to the process started again, resumes right after
the last event the caller had: nothing lost, nothing twice."""

from __future__ import annotations

import asyncio

import grpc

from gongji.account.v1 import account_pb2_grpc
from gongji.settlement.v1 import settlement_pb2_grpc
from tests import support
from tests.e2e.stack import Process, addresses, env_for, wait_serving
from tests.integration.bindings import person
from tests.integration.test_settlement import bill
from tests.integration.watching import READ_S, events, watch

SETTLEMENT = "gongji.settlement.v1.SettlementService"


async def _until_refused(call: object) -> grpc.aio.AioRpcError:
    """Read on (messages sent before the drain may still come) until the stream ends."""
    while True:
        try:
            await asyncio.wait_for(call.read(), READ_S)  # type: ignore[attr-defined]
        except grpc.aio.AioRpcError as e:
            return e


async def test_a10_a_watch_resumes_on_the_restarted_settlement_service(redis_url, redis):
    addrs = addresses()
    account = Process("account", env_for("account", redis_url, addrs)).start()
    settlement = Process("settlement", env_for("settlement", redis_url, addrs)).start()
    try:
        await wait_serving(addrs["account"], "gongji.account.v1.AccountService")
        await wait_serving(addrs["settlement"], SETTLEMENT)
        async with (
            support.channel(addrs["account"]) as a,
            support.channel(addrs["settlement"]) as s,
        ):
            me = await person(account_pb2_grpc.AccountServiceStub(a), 1970, 50_000)
            before = settlement_pb2_grpc.SettlementServiceStub(s)
            call = await watch(before, me)
            made = [await before.Settle(bill(me, 100 + i), timeout=10) for i in range(2)]
            [seen] = await events(call, 1)  # the caller has the first; the second is on its way

            settlement.stop()  # SIGTERM: the drain ends the stream
            ended = await _until_refused(call)
            assert (ended.code(), support.reason_of(ended)) == (
                grpc.StatusCode.UNAVAILABLE, "SERVER_DRAINING",
            )  # fmt: skip
        settlement.start()
        await wait_serving(addrs["settlement"], SETTLEMENT)
        async with support.channel(addrs["settlement"]) as s:
            after = settlement_pb2_grpc.SettlementServiceStub(s)
            made += [await after.Settle(bill(me, 200 + i), timeout=10) for i in range(2)]
            resumed = await watch(after, me, seen.cursor)
            rest = await events(resumed, 3)
            made.append(await after.Settle(bill(me, 300), timeout=10))
            rest += await events(resumed, 1)
            resumed.cancel()
        got = [e.settlement_id for e in [seen, *rest]]
        assert got == [m.settlement_id for m in made], "nothing lost, nothing twice"
    finally:
        settlement.stop()
        account.stop()
