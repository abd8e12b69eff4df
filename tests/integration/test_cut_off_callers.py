"""A caller whose deadline passes at any await of a money path (README "Money safety: the rule
every money path follows"). The points are generated, not picked: the settlement service counts
every Redis command and peer call of the call (services.common.faults) and holds the call at the
n-th until the caller's deadline makes gRPC cancel the handler right there; the test walks
n = 1, 2, ... until a call gets through. At every point the key then answers and every fen is
where it belongs (rules S8, S9, S10, S12, A2)."""

import grpc
import pytest

from gongji.settlement.v1 import settlement_pb2_grpc
from services.settlement.server import build
from tests.money_paths import PATHS, Stubs
from tests.support import serving, settings

DEADLINE_S = 0.5  # far above an unhindered call here (tens of ms)


@pytest.mark.parametrize("method", list(PATHS))
async def test_a_caller_cut_off_at_any_await_leaves_the_money_exact(
    method, account, binding, redis_url, account_addr, binding_server
):
    n = 1
    while True:
        cut = settings(redis_url, "settlement", account_addr=account_addr,
                       binding_addr=binding_server, fault=f"cancel:{method}:{n}")  # fmt: skip
        async with serving(await build(cut)) as (channel, _):
            stubs = Stubs(account, binding, settlement_pb2_grpc.SettlementServiceStub(channel))
            case = await PATHS[method](stubs)
            try:
                await case.call(stubs.settlement, DEADLINE_S)
                reached = False
            except grpc.aio.AioRpcError as e:
                assert e.code() == grpc.StatusCode.DEADLINE_EXCEEDED, (n, e)
                reached = True
            await case.check(stubs)
        if not reached:
            break
        n += 1
    assert n >= 3, "the walk should pass the start and the atomic step at least"
