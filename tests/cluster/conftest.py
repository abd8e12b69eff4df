"""A Redis Cluster of three masters on loopback (the project's own `redis-server`, joined by
its `redis-cli --cluster create`), and two replicas of each service over it, which callers
reach through one address list per service, in turn (round robin)."""

from __future__ import annotations

import pathlib
from collections.abc import AsyncIterator, Iterator

import grpc
import pytest

from services.common.redisdb import EmbeddedCluster, free_cluster_port, free_port
from tests import support
from tests.e2e.conftest import account, binding, settlement  # noqa: F401 - over these channels
from tests.e2e.stack import Process, wait_serving

SERVICES = ("account", "binding", "settlement")
REPLICAS = 2


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedCluster]:
    found = EmbeddedCluster(tmp_path_factory.mktemp("cluster"), free_cluster_port()).start()
    try:
        yield found
    finally:
        found.stop()


@pytest.fixture(scope="session")
def replica_logs(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """Where each replica writes its log lines: `<service>-<n>.log`."""
    return tmp_path_factory.mktemp("replicas")


@pytest.fixture(scope="session")
async def replicas(
    cluster: EmbeddedCluster, replica_logs: pathlib.Path
) -> AsyncIterator[dict[str, list[str]]]:
    """Each service's replicas' addresses; every process reaches its peers by the list."""
    logs = replica_logs
    listen = {n: [f"127.0.0.1:{free_port()}" for _ in range(REPLICAS)] for n in SERVICES}
    common = {
        "GONGJI_REDIS_URL": cluster.url,
        "GONGJI_REDIS_MODE": "cluster",
        "GONGJI_DRAIN_GRACE_MS": "500",
        "GONGJI_POLICY_FILE": support.POLICY_FILE,
        **{f"GONGJI_{n.upper()}_ADDR": ",".join(a) for n, a in listen.items()},
    }
    running: list[Process] = []
    try:
        for name in SERVICES:
            for n, address in enumerate(listen[name]):
                env = {**common, "GONGJI_LISTEN_ADDR": address}
                running.append(Process(name, env, logs / f"{name}-{n}.log").start())
        for name in SERVICES:
            for address in listen[name]:
                await wait_serving(address, f"gongji.{name}.v1.{name.title()}Service")
        yield listen
    finally:
        for p in running:
            p.stop()


@pytest.fixture(scope="session")
async def channels(replicas: dict[str, list[str]]) -> AsyncIterator[dict[str, grpc.aio.Channel]]:
    opened = {name: support.channel(",".join(a)) for name, a in replicas.items()}
    yield opened
    for channel in opened.values():
        await channel.close()
