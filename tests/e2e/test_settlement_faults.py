"""A settlement process killed (kill -9) or paused (SIGSTOP) at every await of the money paths,
as a real process beside a healthy replica (services/common/faults.py). The points are
generated: the faulted replica counts the Redis commands and peer calls of the call
(services.common.faults), and the test walks n = 1, 2, ... until a call gets through. After each
fault the key answers a retry through the healthy replica, and every fen is where it belongs
(rules S8-S12, A2)."""

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
from gongji.settlement.v1 import settlement_pb2_grpc
from services.common.redisdb import EmbeddedRedis, free_port
from tests import support
from tests.e2e.stack import Process, addresses, env_for, wait_serving
from tests.money_paths import PATHS, Stubs

SETTLEMENT = "gongji.settlement.v1.SettlementService"
FAST = {"GONGJI_ENV": "test"}
CALL_S = 3.0  # the faulted call's deadline


class Stack:
    """Redis, the account and binding services, and a healthy settlement replica."""

    def __init__(self, redis_url: str) -> None:
        self.redis_url, self.addrs = redis_url, addresses()
        self.processes: list[Process] = []

    async def start(self, name: str, listen: str, **extra: str) -> Process:
        env = {**env_for(name, self.redis_url, self.addrs), "GONGJI_LISTEN_ADDR": listen, **extra}
        process = Process(name, env).start()
        self.processes.append(process)
        await wait_serving(listen, f"gongji.{name}.v1.{name.title()}Service")
        return process


@pytest.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    redis = EmbeddedRedis(tmp_path_factory.mktemp("redis"), free_port()).start()
    s = Stack(redis.url)
    try:
        for name in ("account", "binding", "settlement"):
            await s.start(name, s.addrs[name], **FAST)
        yield s
    finally:
        for p in s.processes:
            if p.proc and p.proc.poll() is None:
                p.proc.send_signal(signal.SIGCONT)
            p.stop()
        redis.kill()


@contextlib.asynccontextmanager
async def channels(stack: Stack, victim: str) -> AsyncIterator[tuple[Stubs, object]]:
    """Stubs over the healthy services, and a settlement stub to the faulted replica."""
    async with (
        support.channel(stack.addrs["account"]) as a,
        support.channel(stack.addrs["binding"]) as b,
        support.channel(stack.addrs["settlement"]) as s,
        support.channel(victim) as v,
    ):
        yield (Stubs(account_pb2_grpc.AccountServiceStub(a), binding_pb2_grpc.BindingServiceStub(b),
                     settlement_pb2_grpc.SettlementServiceStub(s)),
               settlement_pb2_grpc.SettlementServiceStub(v))  # fmt: skip


def stopped(pid: int) -> bool:
    """The process is stopped by a signal (state T in /proc)."""
    return pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "T"


async def test_a_replica_killed_at_any_await_leaves_the_money_exact(stack):
    """The four paths are walked side by side: a check waits for a dead replica's request claim
    to lapse (its caller's deadline and a second), and four walks share those waits."""
    walked = await asyncio.gather(*(kill_walk(stack, method) for method in PATHS))
    assert all(points >= 2 for points in walked), "each walk: the start and the atomic step"


async def kill_walk(stack: Stack, method: str) -> int:
    n = 1
    while True:
        addr = f"127.0.0.1:{free_port()}"
        victim = await stack.start("settlement", addr, GONGJI_FAULT=f"kill:{method}:{n}", **FAST)
        async with channels(stack, addr) as (stubs, victim_stub):
            case = await PATHS[method](stubs)
            try:
                await case.call(victim_stub, CALL_S)
                killed = False
            except grpc.aio.AioRpcError as e:
                assert e.code() == grpc.StatusCode.UNAVAILABLE, (n, e)
                killed = True
            assert victim.proc
            if killed:
                assert victim.proc.wait(10) == -signal.SIGKILL
            await case.check(stubs)
        victim.stop()
        if not killed:
            return n - 1
        n += 1


async def test_a_replica_paused_at_any_await_pays_nothing_twice(stack):
    """While one replica is paused mid-call, the caller retries through the other; when the
    paused one wakes, its payment finds the one already made (or makes it, once), and the key's
    money is exact (rules S8, S12)."""
    n = 1
    while True:
        addr = f"127.0.0.1:{free_port()}"
        victim = await stack.start("settlement", addr, GONGJI_FAULT=f"pause:Settle:{n}", **FAST)
        assert victim.proc
        async with channels(stack, addr) as (stubs, victim_stub):
            case = await PATHS["Settle"](stubs)
            call = asyncio.ensure_future(case.call(victim_stub, CALL_S))
            for _ in range(40):  # paused within 2 s, or the call got through
                if stopped(victim.proc.pid) or call.done():
                    break
                await asyncio.sleep(0.05)
            paused = stopped(victim.proc.pid)
            if paused:
                await case.check(stubs)  # the caller retries through the other replica
                await asyncio.sleep(0.2)
                victim.proc.send_signal(signal.SIGCONT)
            with contextlib.suppress(grpc.aio.AioRpcError):
                await call
            await case.check(stubs)
        victim.stop()
        if not paused:
            break
        n += 1
    assert n >= 3, "the walk should pass the start and the atomic step at least"
