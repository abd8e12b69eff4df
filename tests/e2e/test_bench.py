"""`gongji bench` against a running stack: its report is complete, and the money it moved
leaves every account's books exact (invariants 1 and 3 of docs/ARCHITECTURE.md; rules S11, S12)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from services.common.redisdb import free_port
from services.stack.launcher import Stack
from tests import support
from tests.integration.accounts import all_entries, get

PROCESSES = {"account", "binding", "settlement", "redis"}


@pytest.fixture
def stack(tmp_path):
    env = {**os.environ, **{f"GONGJI_{n.upper()}_ADDR": f"127.0.0.1:{free_port()}"
                            for n in ("account", "binding", "settlement")}}  # fmt: skip
    env.pop("GONGJI_REDIS_URL", None)
    with open(tmp_path / "services.log", "wb") as logs:
        s = Stack(tmp_path, env=env, redis_port=free_port(), output=logs).start()
        try:
            yield s
        finally:
            s.stop()


def test_a_short_bench_reports_every_figure_and_leaves_the_books_exact(stack):
    command = [sys.executable, "-m", "services.cli", "bench", "--seconds", "1", "--callers", "8",
               "-s", "settle", "-s", "hot", "-s", "mix", "--json"]  # fmt: skip
    done = subprocess.run(command, env=stack.env, capture_output=True, timeout=180)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    report = json.loads(done.stdout)
    assert report["callers"] == 8 and report["machine"]["cpus"] >= 1
    assert set(report["scenarios"]) == {"echo", "settle", "hot", "mix"}
    for name, figures in report["scenarios"].items():
        assert figures["operations"] > 0 and figures["rps"] > 0, name
        assert set(figures["latency_ms"]) == {"p50", "p90", "p99", "max"}, name
        assert sum(figures["outcomes"].values()) == figures["operations"], name
        assert figures["cpu_ms_per_op"]["total"] > 0, name
        assert figures["echo_equivalents"] > 0, name
        expected = {"echo", "total"} if name == "echo" else PROCESSES | {"total"}
        assert set(figures["cpu_ms_per_op"]) == expected, name
        if name != "echo":
            assert figures["outcomes"].get("OK", 0) > 0, name
            assert figures["redis_commands_per_op"] > 0, name
            assert figures["rps_vs_echo"] > 0, name
    assert_books_exact(stack)


def assert_books_exact(stack: Stack) -> None:
    import asyncio

    import redis

    from gongji.account.v1 import account_pb2_grpc

    client = redis.Redis.from_url(stack.env["GONGJI_REDIS_URL"], decode_responses=True)
    people = [k[len("acct:{") : -1] for k in client.scan_iter("acct:{*}", _type="hash")]
    assert len(people) > 30

    async def check() -> None:
        async with support.channel(stack.address("account")) as channel:
            account = account_pb2_grpc.AccountServiceStub(channel)
            for pid in people:
                a, entries = await get(account, pid), await all_entries(account, pid)
                assert a.held_fen == 0, pid
                assert a.balance_fen == sum(e.amount_fen for e in entries) >= 0, pid
                assert all(e.balance_after_fen >= 0 for e in entries), pid

    asyncio.run(check())


def test_the_cluster_bench_reports_memory_and_a_restart_that_reads_only_what_is_pending():
    """`--cluster`: a stack of its own on a three-master Redis Cluster with two replicas of each
    service; `--memory`: bytes per account and per settlement by kind; `--restart`: each
    process started again, SERVING soon, having read no account (issue figures)."""
    env = {k: v for k, v in os.environ.items() if k != "GONGJI_REDIS_URL"}
    command = [sys.executable, "-m", "services.cli", "bench", "--cluster", "--memory", "4",
               "--restart", "-s", "settle", "--seconds", "1", "--callers", "4",
               "--json"]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, timeout=240)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    report = json.loads(done.stdout)
    settle = report["scenarios"]["settle"]
    assert settle["outcomes"] == {"OK": settle["operations"]} and settle["operations"] > 0
    assert {"account1", "account2", "redis1", "redis2", "redis3"} <= set(settle["cpu_ms_per_op"])
    memory = report["memory"]
    assert memory["families"] == 4
    for part in ("per_account", "per_settlement"):
        assert memory[part]["ledger"] > 0 and memory[part]["kept"] > 0, part
    assert set(report["restart"]) == {f"{n}{i}" for n in ("account", "binding", "settlement")
                                      for i in (1, 2)}  # fmt: skip
    for restarted in report["restart"].values():
        assert restarted["seconds_to_serving"] < 30
        commands = restarted["redis_commands"]
        assert not {"scan", "keys", "xrange", "hgetall"} & set(commands), commands
