"""`gongji bench`: load the stack from N callers and report what each operation costs.

It uses the stack already running at the configured addresses (loopback only), or starts one
of its own (embedded Redis in a temporary folder, free ports) and stops it afterwards. In the
same run it measures a bare grpc.aio echo server with the same client, so every figure also
reads as a multiple of the cheapest call there is.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import functools
import ipaddress
import json
import os
import pathlib
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import grpc
import psutil
import redis
from grpc_health.v1 import health_pb2, health_pb2_grpc
from rich.console import Console
from rich.progress import Progress

from services.account.store import AccountStore
from services.bench import load, measure, memory, report, scenarios
from services.common.config import DEFAULT_ADDRS, Tls
from services.common.enums import EntryKind, InsuranceType
from services.common.ids import make_person_id
from services.common.redisdb import connect, free_cluster_port, free_port
from services.common.security import channel_credentials
from services.stack.connect import Connection
from services.stack.launcher import SERVICES, Stack

WARMUP_S = 1.0


@dataclasses.dataclass
class Target:
    addresses: dict[str, str]  # service -> address, and "echo"
    pids: dict[str, int]  # server processes to measure: services, redis, echo
    nodes: list[redis.Redis]  # the Redis, or every master of a cluster
    connection: Connection  # an operator's token ("bench"), TLS when the stack uses it
    stack: Stack | None = None  # when the bench started the stack itself
    redis_url: str = ""
    redis_mode: str = "single"


@dataclasses.dataclass(frozen=True)
class Options:
    preload: int = 0  # accounts loaded before measuring
    load: str = "api"  # how: through the API, or by the account service's scripts ("scripts")
    cluster: bool = False  # a stack of our own on a Redis Cluster, two replicas of each service
    memory: int = 0  # families for the memory figures (0: none)
    restart: bool = False  # time a restart of the account service with what is loaded
    replicas: int = 0  # of each service in a stack of our own (0: 2 on a cluster, else 1)


def bench(
    names: list[str], callers: int, seconds: float, count: int, as_json: bool, options: Options
) -> int:
    console = Console(stderr=True)
    with target(options.cluster, options.replicas) as t:
        document = asyncio.run(measure_all(t, names, callers, seconds, count, options, console))
    document = {"machine": report.machine(), "callers": callers, **document}
    if as_json:
        print(json.dumps(document, indent=2, ensure_ascii=False))
    else:
        report.print_table(document["scenarios"], Console())
        for extra in ("memory", "restart"):
            if extra in document:
                Console().print(extra, document[extra])
    return 0


def _nodes(url: str, env: dict[str, str]) -> list[redis.Redis]:
    if env.get("GONGJI_REDIS_MODE") != "cluster":
        return [redis.Redis.from_url(url)]
    cluster = redis.RedisCluster.from_url(url)
    primaries = cluster.get_primaries()  # type: ignore[no-untyped-call]
    return [cluster.get_redis_connection(node) for node in primaries]


@contextlib.contextmanager
def target(cluster: bool = False, replicas: int = 0) -> Iterator[Target]:
    """The running stack if the configured addresses answer, else a stack of our own (`cluster`:
    on an embedded Redis Cluster, two replicas of each service unless `replicas` says); and an
    echo server either way."""
    env = dict(os.environ)
    addresses = {n: env.get(f"GONGJI_{n.upper()}_ADDR", a) for n, a in DEFAULT_ADDRS.items()}
    for address in addresses.values():
        _loopback_only(address)
    echo_addr = f"127.0.0.1:{free_port()}"
    echo = subprocess.Popen([sys.executable, "-m", "services.bench.echo", echo_addr],
                            stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        _wait_answering(echo_addr)
        credentials = channel_credentials(Tls.from_env(env))
        if not cluster and _answers(addresses["settlement"], credentials):
            url = env.get("GONGJI_REDIS_URL", "redis://127.0.0.1:6390/0")
            pids = {**_listening(addresses), **_listening({"redis": _hostport(url)})}
            yield Target({**addresses, "echo": echo_addr}, {**pids, "echo": echo.pid},
                         _nodes(url, env), _operator(env), None, url,
                         env.get("GONGJI_REDIS_MODE") or "single")  # fmt: skip
            return
        with tempfile.TemporaryDirectory(prefix="gongji-bench-") as var:
            replicas = replicas or (2 if cluster else 1)
            own = {n: ",".join(f"127.0.0.1:{free_port()}" for _ in range(replicas))
                   for n in SERVICES}  # fmt: skip
            env.update({f"GONGJI_{n.upper()}_ADDR": a for n, a in own.items()})
            env.pop("GONGJI_REDIS_URL", None)
            if cluster:
                env.update(GONGJI_REDIS_MODE="cluster", GONGJI_METRICS_ADDR="off")
            port = free_cluster_port() if cluster else free_port()
            logs = open(pathlib.Path(var) / "services.log", "wb")  # noqa: SIM115
            stack = Stack(pathlib.Path(var), env=env, redis_port=port, output=logs)
            stack.start()
            try:
                url = stack.env["GONGJI_REDIS_URL"]
                yield Target({**own, "echo": echo_addr}, {**stack.pids(), "echo": echo.pid},
                             _nodes(url, stack.env), _operator(stack.client_env), stack, url,
                             "cluster" if cluster else "single")  # fmt: skip
            finally:
                stack.stop()
                logs.close()
    finally:
        echo.terminate()
        echo.wait(10)


async def measure_all(
    t: Target, names: list[str], callers: int, seconds: float, count: int, options: Options,
    console: Console,
) -> dict[str, Any]:  # fmt: skip
    """Every scenario's figures (`scenarios`), then `memory` and `restart` when asked for."""
    channels = {
        n: t.connection.channel(a) if n != "echo" else grpc.aio.insecure_channel(a)
        for n, a in t.addresses.items()
    }
    stubs = scenarios.Stubs.over(channels)
    people = scenarios.People(random.Random())
    try:
        if options.preload and options.load == "scripts":
            await _load_by_scripts(t, options.preload, console)
        elif options.preload:
            await _preload(stubs, people, options.preload, console)
        document: dict[str, Any] = {"accounts_loaded": options.preload, "loaded_by": options.load}
        echo_cost, echo_rps, results = None, None, {}
        for name in ["echo", *[n for n in names if n != "echo"]]:
            operation = await scenarios.SCENARIOS[name](stubs, callers, people)
            await load.drive(operation, callers, min(WARMUP_S, seconds or WARMUP_S), 0)
            pids = {k: v for k, v in t.pids.items() if (k == "echo") == (name == "echo")}
            before = measure.snapshot(pids, t.nodes)
            with Progress(console=console, transient=True) as progress:
                task = progress.add_task(f"{name}", total=count or None)
                advance = functools.partial(progress.advance, task)
                run = await load.drive(operation, callers, seconds, count, advance)
            cost = measure.cost(before, measure.snapshot(pids, t.nodes), run.count)
            if name == "echo":
                echo_cost, echo_rps = cost, run.rps
            results[name] = report.figures(run, cost, echo_cost, echo_rps)
            console.print(f"{name}: {run.count} operations, {run.rps:.0f}/s")
        document["scenarios"] = results
        if options.memory:
            document["memory"] = await memory.measure(stubs, people, t.nodes, options.memory)
        if options.restart:
            document["restart"] = _restart(t)
        return document
    finally:
        for channel in channels.values():
            await channel.close()


async def _preload(s: scenarios.Stubs, people: scenarios.People, n: int, console: Console) -> None:
    """n accounts with one credit each, through the API, 64 at a time."""
    started, done = time.monotonic(), 0
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("preload", total=n)
        while done < n:
            batch = min(64, n - done)
            await asyncio.gather(*(people.open(s, 1970, 1_000) for _ in range(batch)))
            done += batch
            progress.advance(task, batch)
    console.print(f"preloaded {n} accounts in {time.monotonic() - started:.0f} s")


async def _load_by_scripts(t: Target, n: int, console: Console) -> None:
    """n accounts opened and given one credit by the account service's own scripts, straight
    into Redis (hundreds of thousands a minute, where the API takes an hour for a million).
    Each keeps its OPENED event in its outbox, unmarked: a start that read every outbox would
    read them all; and two markers for 7 days. Ids from region 440103, which the scenarios
    never use."""
    redis = connect(t.redis_url, mode=t.redis_mode)
    store = AccountStore(redis)
    gate = asyncio.Semaphore(256)

    async def one(i: int) -> None:
        pid = make_person_id("440103", dt.date(1950, 1, 1) + dt.timedelta(days=i // 1000),
                             i % 1000)  # fmt: skip
        async with gate:  # with markers: a command the client sends again is applied once
            await store.open(pid, "测试", InsuranceType.EMPLOYEE, "440103", "load",
                             f"OpenAccount:load-{pid}")  # fmt: skip
            await store.credit(pid, 1_000, EntryKind.ALLOCATION, "bench", "load",
                               f"Credit:load-{pid}")  # fmt: skip

    started = time.monotonic()
    try:
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("load", total=n)
            for first in range(0, n, 4096):
                await asyncio.gather(*(one(i) for i in range(first, min(n, first + 4096))))
                progress.advance(task, min(4096, n - first))
    finally:
        await redis.aclose()
    console.print(f"loaded {n} accounts by script in {time.monotonic() - started:.0f} s")


def _restart(t: Target) -> dict[str, Any]:
    """Each service process stopped and started again, one at a time, with what is loaded:
    seconds until SERVING, and the Redis commands its start made."""
    if t.stack is None:
        raise SystemExit("--restart needs a stack the bench starts itself")
    found: dict[str, Any] = {}
    for name in t.stack.processes():
        before = measure.redis_commands(t.nodes)
        seconds = t.stack.restart(name)
        after = measure.redis_commands(t.nodes)
        made = {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}
        found[name] = {"seconds_to_serving": round(seconds, 2), "redis_commands": made}
    return found


def _loopback_only(address: str) -> None:
    host = address.rsplit(":", 1)[0].strip("[]")
    if host != "localhost" and not ipaddress.ip_address(host).is_loopback:
        raise SystemExit(f"gongji bench runs against loopback addresses only, not {address}")


def _hostport(url: str) -> str:
    return url.split("://", 1)[1].split("/", 1)[0].rsplit("@", 1)[-1]


def _listening(addresses: dict[str, str]) -> dict[str, int]:
    """The pids listening on these addresses' ports (the processes of a running stack)."""
    ports = {int(a.rsplit(":", 1)[1]): name for name, a in addresses.items()}
    found = {}
    for c in psutil.net_connections(kind="tcp"):
        if c.status == psutil.CONN_LISTEN and c.laddr.port in ports and c.pid:
            found[ports[c.laddr.port]] = c.pid
    return found


def _operator(env: dict[str, str]) -> Connection:
    return Connection.from_env(env, "operator", "bench")


def _answers(address: str, credentials: grpc.ChannelCredentials | None = None) -> bool:
    with Connection(None, credentials).health_channel(address) as channel:
        try:
            health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=1)
            return True
        except grpc.RpcError:
            return False


def _wait_answering(address: str, wait_s: float = 20) -> None:
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if _answers(address):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{address} did not answer")
