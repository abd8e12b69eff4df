"""Crashes and pauses of a real settlement process (DESIGN "Faults on purpose")."""

from __future__ import annotations

import asyncio
import contextlib
import pathlib
import signal
from collections.abc import AsyncIterator

import grpc
import pytest

from gongji.account.v1 import account_pb2_grpc
from gongji.binding.v1 import binding_pb2_grpc
from gongji.settlement.v1 import settlement_pb2 as spb
from gongji.settlement.v1 import settlement_pb2_grpc
from services.common.redisdb import EmbeddedRedis, free_port
from services.common.rpc import reason_of
from tests.e2e.stack import Process, addresses, env_for, wait_serving
from tests.integration.accounts import get
from tests.integration.test_settlement import HOSPITAL, bill, family

SETTLEMENT = "gongji.settlement.v1.SettlementService"


class Stack:
    def __init__(self, redis_url: str) -> None:
        self.redis_url, self.addrs = redis_url, addresses()
        self.processes: list[Process] = []

    async def start(self, name: str, **extra: str) -> Process:
        env = {**env_for(name, self.redis_url, self.addrs), **extra}
        if name == "settlement":
            env["GONGJI_LISTEN_ADDR"] = extra.get("GONGJI_LISTEN_ADDR", self.addrs[name])
        process = Process(name, env).start()
        self.processes.append(process)
        await wait_serving(env["GONGJI_LISTEN_ADDR"], f"gongji.{name}.v1.{name.title()}Service")
        return process


@pytest.fixture
async def stack(tmp_path) -> AsyncIterator[Stack]:
    redis = EmbeddedRedis(tmp_path / "redis", free_port()).start()
    s = Stack(redis.url)
    await s.start("account")
    await s.start("binding")
    try:
        yield s
    finally:
        for p in s.processes:
            if p.proc and p.proc.poll() is None:
                p.proc.send_signal(signal.SIGCONT)
            p.stop()
        redis.kill()


@contextlib.asynccontextmanager
async def stubs(stack: Stack, settlement_addr: str):
    async with (
        grpc.aio.insecure_channel(stack.addrs["account"]) as a,
        grpc.aio.insecure_channel(stack.addrs["binding"]) as b,
        grpc.aio.insecure_channel(settlement_addr) as s,
    ):
        yield (account_pb2_grpc.AccountServiceStub(a), binding_pb2_grpc.BindingServiceStub(b),
               settlement_pb2_grpc.SettlementServiceStub(s))  # fmt: skip


def state(pid: int) -> str:
    """The process state letter from /proc (T = stopped by a signal)."""
    return pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


async def stopped(pid: int) -> None:
    """Wait until the process is stopped by a signal."""
    for _ in range(400):
        if state(pid) == "T":
            return
        await asyncio.sleep(0.025)
    raise AssertionError("the process never reached its pause point")


async def settled_state(settlement, request: spb.SettleRequest) -> int:
    get_req = spb.GetSettlementRequest(institution_id=HOSPITAL,
                                       medins_setl_id=request.medins_setl_id)  # fmt: skip
    for _ in range(300):
        s = await settlement.GetSettlement(get_req, timeout=5)
        if s.status in (spb.SETTLEMENT_STATUS_SETTLED, spb.SETTLEMENT_STATUS_ABORTED):
            return s.status
        await asyncio.sleep(0.05)
    raise AssertionError("recovery did not finish the settlement")


@pytest.mark.parametrize(
    ("fault", "outcome"),
    [("after_place_holds", spb.SETTLEMENT_STATUS_ABORTED),
     ("after_committing", spb.SETTLEMENT_STATUS_SETTLED)],
)  # fmt: skip
async def test_a_settlement_killed_mid_way_is_finished_by_recovery(stack, fault, outcome):
    fast = {"GONGJI_RECOVERY_AFTER_MS": "300", "GONGJI_ENV": "test"}
    crashing = await stack.start("settlement", GONGJI_FAULT=fault, **fast)
    async with stubs(stack, stack.addrs["settlement"]) as (account, binding, settlement):
        child, dad, mum = await family(account, binding)
        request = bill(child, 30_000)
        with pytest.raises(grpc.aio.AioRpcError):
            await settlement.Settle(request, timeout=10)
        assert crashing.proc and crashing.proc.wait(10) == -signal.SIGKILL
        await stack.start("settlement", **fast)
        assert await settled_state(settlement, request) == outcome
        balances = [await get(account, p) for p in (child, dad, mum)]
    assert all(a.held_fen == 0 for a in balances)  # every hold resolved
    expected = (
        [5_000, 20_000, 20_000] if outcome == spb.SETTLEMENT_STATUS_ABORTED else [0, 0, 15_000]
    )
    assert [a.balance_fen for a in balances] == expected


async def test_a_paused_holder_whose_lease_ran_out_is_refused_by_fencing(stack):
    short = {"GONGJI_LOCK_LEASE_MS": "300", "GONGJI_ENV": "test"}
    paused_addr = f"127.0.0.1:{free_port()}"
    paused = await stack.start("settlement", GONGJI_FAULT="pause_before_place_holds",
                               GONGJI_LISTEN_ADDR=paused_addr, **short)  # fmt: skip
    await stack.start("settlement", **short)
    async with (
        stubs(stack, paused_addr) as (account, binding, slow),
        stubs(stack, stack.addrs["settlement"]) as (_, _, fast),
    ):
        child, dad, _ = await family(account, binding, own=0, father=10_000, mother=1)
        first = asyncio.ensure_future(slow.Settle(bill(child, 8_000), timeout=30))
        assert paused.proc
        await stopped(paused.proc.pid)  # paused (SIGSTOP) after locking
        await asyncio.sleep(0.6)  # its 300 ms lease runs out
        other = await fast.Settle(bill(child, 8_000), timeout=10)
        assert [leg.amount_fen for leg in other.legs] == [8_000]
        paused.proc.send_signal(signal.SIGCONT)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await first
        assert reason_of(info.value) == "STALE_FENCING_TOKEN"
        a = await get(account, dad)
    assert (a.balance_fen, a.held_fen) == (2_000, 0)  # nothing overdrawn, nothing held
