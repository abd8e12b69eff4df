"""The month-end premium job killed half-way (rule A2): the settlement process dies by SIGKILL
in the middle of a run; started again, a new run pays what is still due and no one twice."""

from __future__ import annotations

import datetime as dt
import signal

import grpc

from gongji.account.v1 import account_pb2 as apb
from gongji.account.v1 import account_pb2_grpc
from gongji.binding.v1 import binding_pb2_grpc
from gongji.settlement.v1 import settlement_pb2 as spb
from gongji.settlement.v1 import settlement_pb2_grpc
from services.common.ids import PROVINCES
from services.common.redisdb import EmbeddedRedis, free_port
from tests import support
from tests.e2e.stack import Process, addresses, env_for, wait_serving
from tests.integration.accounts import all_entries, rid
from tests.integration.bindings import CHILD, create, person

YEAR = dt.date.today().year + 1
FAMILIES = 4
# Fault points of a run (services.common.faults): its start, the run's request claim, one HSCAN
# per province up to Hunan's (43, where every family is), then for each family the premium's
# lookup and its payment. Killed as the second payment returns: two paid, two due.
KILL_AT = 1 + 1 + sum(1 for p in PROVINCES if p <= 43) + 2 * 2


async def start(name: str, redis_url: str, addrs: dict[str, str], **extra: str) -> Process:
    process = Process(name, {**env_for(name, redis_url, addrs), **extra}).start()
    await wait_serving(addrs[name], f"gongji.{name}.v1.{name.title()}Service")
    return process


async def test_a_run_killed_half_way_and_run_again_pays_everyone_once(tmp_path):  # rule A2
    redis = EmbeddedRedis(tmp_path / "redis", free_port()).start()
    addrs, running = addresses(), []
    try:
        for name in ("account", "binding"):
            running.append(await start(name, redis.url, addrs))
        victim = await start("settlement", redis.url, addrs, GONGJI_ENV="test",
                             GONGJI_FAULT=f"kill:RunPremiumDeductions:{KILL_AT}")  # fmt: skip
        running.append(victim)
        async with (
            support.channel(addrs["account"]) as a,
            support.channel(addrs["binding"]) as b,
            support.channel(addrs["settlement"]) as s,
        ):
            account = account_pb2_grpc.AccountServiceStub(a)
            binding = binding_pb2_grpc.BindingServiceStub(b)
            payers = []
            for _ in range(FAMILIES):
                parent = await person(account, 1970, 100_000)
                kid = await person(account, 2010, 0, resident=True)
                await binding.CreateBinding(create(parent, kid, CHILD), timeout=10)
                await settlement_pb2_grpc.SettlementServiceStub(s).SetPremiumAutoPay(
                    spb.SetPremiumAutoPayRequest(beneficiary_id=kid, payer_id=parent,
                                                 enabled=True, request_id=rid()), timeout=10,
                )  # fmt: skip
                payers.append(parent)
            job = settlement_pb2_grpc.SettlementServiceStub(s)
            try:
                await job.RunPremiumDeductions(spb.RunPremiumDeductionsRequest(
                    year=YEAR, run_id=rid()), timeout=20)  # fmt: skip
                raise AssertionError("the run should have been killed")
            except grpc.aio.AioRpcError as e:
                assert e.code() == grpc.StatusCode.UNAVAILABLE
            assert victim.proc and victim.proc.wait(10) == -signal.SIGKILL

            async def paid() -> list[int]:
                return [sum(1 for e in await all_entries(account, p)
                            if e.kind == apb.ENTRY_KIND_PREMIUM) for p in payers]  # fmt: skip

            assert sorted(await paid()) == [0, 0, 1, 1], "killed half-way"
            running.append(await start("settlement", redis.url, addrs))
            async with support.channel(addrs["settlement"]) as s2:
                again = await settlement_pb2_grpc.SettlementServiceStub(s2).RunPremiumDeductions(
                    spb.RunPremiumDeductionsRequest(year=YEAR, run_id=rid()), timeout=20
                )
            assert (again.paid, again.already_paid, len(again.skipped)) == (2, 2, 0)
            assert await paid() == [1] * FAMILIES
    finally:
        for process in running:
            process.stop()
        redis.kill()
