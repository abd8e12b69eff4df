"""The whole stack on one machine: `gongji run` (what `make run` starts) and `gongji bench`.

`Stack` starts the embedded Redis (unless GONGJI_REDIS_URL names one; with
GONGJI_REDIS_MODE=cluster, a Redis Cluster of three masters on GONGJI_REDIS_PORT and the two
ports after it), then each service as its own process with the Redis URL passed down (one
process per address when a `*_ADDR` lists several: a service's replicas), waits until each
reports SERVING, and stops them all, services first. Its children die with it, even when it is
killed with `kill -9` (Linux). `run` keeps a stack up until SIGINT/SIGTERM or until any part of
it exits, and refuses to start a second stack over the same data folder or on taken ports,
saying so in one line.
"""

from __future__ import annotations

import json
import logging
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time
from types import FrameType
from typing import IO, Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.common.auth import ensure_secret
from services.common.config import DEFAULT_ADDRS, DEFAULT_METRICS_ADDRS, ConfigError, Tls
from services.common.process import tied
from services.common.redisdb import EmbeddedCluster, EmbeddedRedis
from services.common.security import channel_credentials
from services.stack.connect import Connection

log = logging.getLogger("gongji.launcher")

SERVICES = ("account", "binding", "settlement")
EMBEDDED_PORT = 6390  # GONGJI_REDIS_PORT moves it
RUN_FILE = "run.json"  # in the data folder while a stack runs over it
SERVICE_NAMES = {
    "account": "gongji.account.v1.AccountService",
    "binding": "gongji.binding.v1.BindingService",
    "settlement": "gongji.settlement.v1.SettlementService",
}


class StackError(Exception):
    """The stack cannot start; the message is the one line the user reads."""


class Stack:
    def __init__(
        self, var_dir: pathlib.Path, services: tuple[str, ...] = SERVICES,
        env: dict[str, str] | None = None, redis_port: int | None = None,
        output: IO[bytes] | None = None, certs: pathlib.Path | None = None,
        stdout: IO[bytes] | None = None,
    ) -> None:  # fmt: skip
        """`output`: where the services' logs go (default: this process's stderr), `stdout`:
        their standard output (spans, with OTEL_TRACES_EXPORTER=console); `certs`: a
        `gongji certs` folder, for mutual TLS between all parts (each service its own
        certificate; this launcher and `client_env` the client's)."""
        self.env = dict(os.environ if env is None else env)
        self.certs = certs.resolve() if certs else None
        self.output, self.stdout = output, stdout
        self.var_dir, self.services = var_dir, services
        self.redis_port = redis_port or _port(self.env.get("GONGJI_REDIS_PORT", ""))
        self.redis: EmbeddedRedis | EmbeddedCluster | None = None
        self.children: dict[str, subprocess.Popen[bytes]] = {}

    def address(self, service: str) -> str:
        """Where callers reach the service: one address, or its replicas' list."""
        return self.env.get(f"GONGJI_{service.upper()}_ADDR", DEFAULT_ADDRS[service])

    def processes(self) -> dict[str, tuple[str, str, str]]:
        """Each process to start, by name (`account`, or `account1`, `account2`, ... for a
        service's replicas): its service, listen address and metrics address."""
        found = {}
        for service in self.services:
            listed = [a.strip() for a in self.address(service).split(",")]
            host, _, port = DEFAULT_METRICS_ADDRS[service].rpartition(":")
            for i, address in enumerate(listed):
                name = service if len(listed) == 1 else f"{service}{i + 1}"
                found[name] = (service, address, f"{host}:{int(port) + 10 * i}")
        return found

    def tls_env(self, name: str) -> dict[str, str]:
        if self.certs is None:
            return {}
        return {
            "GONGJI_TLS_CERT_FILE": str(self.certs / f"{name}.pem"),
            "GONGJI_TLS_KEY_FILE": str(self.certs / f"{name}.key"),
            "GONGJI_TLS_CA_FILE": str(self.certs / "ca.pem"),
        }

    @property
    def client_env(self) -> dict[str, str]:
        """What a caller of this stack sets: its addresses, secret and client certificate."""
        return {**self.env, **self.tls_env("client")}

    def start(self, wait_s: float = 30.0) -> Stack:
        self._check_free()
        secret = self.env.get("GONGJI_AUTH_SECRET_FILE") or str(self.var_dir / "auth-secret")
        self.env["GONGJI_AUTH_SECRET_FILE"] = str(ensure_secret(secret).resolve())
        self.env.pop("GONGJI_LISTEN_ADDR", None)  # each service listens on its own *_ADDR
        if self.env.get("GONGJI_METRICS_ADDR") != "off":  # and serves metrics on its own
            self.env.pop("GONGJI_METRICS_ADDR", None)
        try:
            self._write_run_file()
            if not self.env.get("GONGJI_REDIS_URL"):
                fsync = self.env.get("GONGJI_REDIS_APPENDFSYNC", "always")
                if self.clustered:
                    self.redis = EmbeddedCluster(
                        self.var_dir / "redis-cluster", self.redis_port, fsync=fsync, tied=True
                    )
                else:
                    self.redis = EmbeddedRedis(
                        self.var_dir / "redis", self.redis_port, fsync=fsync, tied=True
                    )
                self.env["GONGJI_REDIS_URL"] = self.redis.start().url
                log.info("embedded redis", extra={"fields": {"url": self.redis.url,
                                                             "appendfsync": fsync}})  # fmt: skip
            for name in self.processes():
                self.children[name] = self._spawn(name)
            for name in self.processes():
                self._wait_serving(name, wait_s)
        except BaseException:
            self.stop()
            raise
        log.info("stack started", extra={"fields": {"services": ",".join(self.services)}})
        return self

    @property
    def clustered(self) -> bool:
        return self.env.get("GONGJI_REDIS_MODE") == "cluster"

    @property
    def run_file(self) -> pathlib.Path:
        return self.var_dir / RUN_FILE

    def _check_free(self) -> None:
        """One line instead of a traceback: a stack already over this data folder, or a port
        that something else holds."""
        running = _running(self.run_file)
        if running is not None:
            raise StackError(
                f"a stack is already running over {self.var_dir}/ (pid {running['pid']}: "
                f"{', '.join(f'{n} {a}' for n, a in running['addresses'].items())}); "
                f"stop it with Ctrl-C in its terminal or `kill {running['pid']}`"
            )
        processes = self.processes()
        wanted = {name: address for name, (_, address, _) in processes.items()}
        if self.env.get("GONGJI_METRICS_ADDR") != "off":
            wanted.update({f"{n} metrics": m for n, (_, _, m) in processes.items()})
        if not self.env.get("GONGJI_REDIS_URL"):
            wanted["embedded redis"] = f"127.0.0.1:{self.redis_port}"
            if self.clustered:
                for port in (self.redis_port + 1, self.redis_port + 2):
                    wanted[f"embedded redis {port}"] = f"127.0.0.1:{port}"
        for name, address in wanted.items():
            if _taken(address):
                variable = ("GONGJI_REDIS_PORT" if name.startswith("embedded redis") else "") or (
                    "GONGJI_METRICS_ADDR=off" if name.endswith("metrics")
                    else f"GONGJI_{processes[name][0].upper()}_ADDR"
                )  # fmt: skip
                raise StackError(
                    f"{address} ({name}) is taken by another program; stop it, or move the "
                    f"stack with {variable}"
                )

    def _write_run_file(self) -> None:
        self.var_dir.mkdir(parents=True, exist_ok=True)
        addresses = {name: self.address(name) for name in self.services}
        self.run_file.write_text(json.dumps({"pid": os.getpid(), "addresses": addresses}))

    def _wait_serving(self, name: str, wait_s: float) -> None:
        """Until the process `name` (one of `processes`) reports SERVING."""
        service, address, _ = self.processes()[name]
        deadline = time.monotonic() + wait_s
        with self._health_channel(address) as channel:
            while time.monotonic() < deadline:
                if self.children[name].poll() is not None:
                    raise RuntimeError(f"the {name} service exited at start")
                if _status(channel, service, timeout_s=1) == "SERVING":
                    return
                time.sleep(0.05)
        raise RuntimeError(f"the {name} service did not become SERVING at {address}")

    def restart(self, name: str, wait_s: float = 60.0) -> float:
        """Stop the process `name` (SIGTERM) and start it again: seconds until it is SERVING."""
        child = self.children[name]
        child.send_signal(signal.SIGTERM)
        child.wait(15)
        started = time.monotonic()
        self.children[name] = self._spawn(name)
        self._wait_serving(name, wait_s)
        return time.monotonic() - started

    def _spawn(self, name: str) -> subprocess.Popen[bytes]:
        service, address, metrics = self.processes()[name]
        env = {**self.env, **self.tls_env(service), "GONGJI_LISTEN_ADDR": address}
        if self.env.get("GONGJI_METRICS_ADDR") != "off":
            env["GONGJI_METRICS_ADDR"] = metrics
        return spawn(service, env, self.output, self.stdout)

    def health(self, name: str, timeout_s: float = 2.0) -> str:
        """What the service's health says (SERVING, NOT_SERVING, ...), or UNREACHABLE."""
        with self._health_channel(self.address(name)) as channel:
            return _status(channel, name, timeout_s)

    def _health_channel(self, address: str) -> grpc.Channel:
        """Health is open to every caller: no token, but TLS when the environment has it."""
        connection = Connection(None, channel_credentials(Tls.from_env(self.client_env)))
        return connection.health_channel(address)

    def pids(self) -> dict[str, int]:
        """The processes of the stack, by name (`redis` when it is the embedded one)."""
        found = {name: child.pid for name, child in self.children.items()}
        nodes = self.redis.nodes if isinstance(self.redis, EmbeddedCluster) else [self.redis]
        for i, node in enumerate(n for n in nodes if n and n.process):
            assert node.process is not None
            found["redis" if len(nodes) == 1 else f"redis{i + 1}"] = node.process.pid
        return found

    def exited(self) -> str:
        """The part of the stack that has exited, or ''."""
        if self.redis and not self.redis.alive():
            return "redis"
        return next((n for n, c in self.children.items() if c.poll() is not None), "")

    def stop(self) -> None:
        for child in self.children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for child in self.children.values():
            try:
                child.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
        if self.redis:
            self.redis.stop()
        if (_running(self.run_file) or {}).get("pid") == os.getpid():
            self.run_file.unlink()


def _status(channel: grpc.Channel, name: str, timeout_s: float) -> str:
    request = health_pb2.HealthCheckRequest(service=SERVICE_NAMES[name])
    try:
        answer = health_pb2_grpc.HealthStub(channel).Check(request, timeout=timeout_s)
    except grpc.RpcError:
        return "UNREACHABLE"
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status))


def spawn(
    name: str, env: dict[str, str], stderr: Any = None, stdout: Any = None
) -> subprocess.Popen[bytes]:
    """One service as its own process (`python -m services.<name>`) that dies with this one:
    how the launcher, and every test that runs real processes, start a service."""
    command = tied([sys.executable, "-m", f"services.{name}"])
    return subprocess.Popen(command, env=env, stdout=stdout, stderr=stderr)


def _port(raw: str) -> int:
    if not raw:
        return EMBEDDED_PORT
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise ConfigError(f"GONGJI_REDIS_PORT must be a port number, got {raw!r}")
    return int(raw)


def _running(run_file: pathlib.Path) -> dict[str, Any] | None:
    """What the run file says runs, if its launcher is still alive (a `kill -9`ed one leaves
    the file behind)."""
    try:
        found = json.loads(run_file.read_text())
        os.kill(int(found["pid"]), 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return dict(found)


def _taken(address: str) -> bool:
    host, _, port = address.rpartition(":")
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is free
        try:
            s.bind((host.strip("[]"), int(port)))
        except OSError:
            return True
    return False


def run(
    var_dir: pathlib.Path, services: tuple[str, ...] = SERVICES,
    certs: pathlib.Path | None = None,
) -> int:  # fmt: skip
    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        stack = Stack(var_dir, services, certs=certs).start()
    except (StackError, ConfigError, RuntimeError) as e:
        print(f"gongji run: {e}", file=sys.stderr)
        return 1
    try:
        while not stopping:
            gone = stack.exited()
            if gone:
                log.error("part of the stack exited; stopping", extra={"fields": {"part": gone}})
                return 1
            time.sleep(0.2)
        return 0
    finally:
        stack.stop()
        log.info("stack stopped")
