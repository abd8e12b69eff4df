"""Real service processes over a Redis of their own, for end-to-end tests."""

from __future__ import annotations

import asyncio
import os
import pathlib
import signal
import subprocess

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.common.redisdb import free_port
from services.stack.launcher import spawn


class Process:
    """One service started as `python -m services.<name>`."""

    def __init__(self, name: str, env: dict[str, str], log: pathlib.Path | None = None) -> None:
        """`log`: where its log lines go (appended), else nowhere."""
        self.name, self.env, self.log = name, env, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Process:
        out = self.log.open("ab") if self.log else subprocess.DEVNULL
        try:
            self.proc = spawn(self.name, {**os.environ, **self.env}, stderr=out)
        finally:
            if self.log:
                out.close()  # type: ignore[union-attr]
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def addresses() -> dict[str, str]:
    return {name: f"127.0.0.1:{free_port()}" for name in ("account", "binding", "settlement")}


def env_for(name: str, redis_url: str, addrs: dict[str, str]) -> dict[str, str]:
    return {
        "GONGJI_REDIS_URL": redis_url,
        "GONGJI_LISTEN_ADDR": addrs[name],
        "GONGJI_DRAIN_GRACE_MS": "500",
        **{f"GONGJI_{n.upper()}_ADDR": a for n, a in addrs.items()},
    }


async def wait_serving(address: str, service: str, seconds: float = 20) -> None:
    async with grpc.aio.insecure_channel(address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for _ in range(int(seconds / 0.05)):
            try:
                r = await health.Check(health_pb2.HealthCheckRequest(service=service), timeout=1)
                if r.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.aio.AioRpcError:
                pass
            await asyncio.sleep(0.05)
    raise AssertionError(f"{service} never became SERVING at {address}")
