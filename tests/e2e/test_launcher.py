"""`gongji run` (what `make run` starts) as users meet it: a second start beside a running stack,
a port something else holds, and a launcher killed with `kill -9`."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import psutil

from services.common.redisdb import free_port

PARTS = ("account", "binding", "settlement")


def gongji_run(var: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "services.cli", "run", "--var", var], env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip


def stack_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("GONGJI_REDIS_URL", "GONGJI_AUTH_SECRET_FILE")}  # fmt: skip
    env.update({f"GONGJI_{n.upper()}_ADDR": f"127.0.0.1:{free_port()}" for n in PARTS})
    env["GONGJI_REDIS_PORT"] = str(free_port())
    env["GONGJI_LISTEN_ADDR"] = "127.0.0.1:1"  # ignored under the launcher: one port each
    return env


def wait_started(launcher: psutil.Process, parts: int = 4, seconds: float = 60) -> list:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        children = launcher.children()
        listening = {c.laddr.port for c in psutil.net_connections("tcp") if c.status == "LISTEN"}
        if len(children) == parts and all(
            any(conn.laddr.port in listening for conn in child.net_connections())
            for child in children
        ):
            return children
        time.sleep(0.2)
    raise AssertionError("the stack did not start")


def test_a_second_start_says_what_runs_and_a_killed_launcher_takes_its_children_along(tmp_path):
    env = stack_env()
    first = gongji_run(str(tmp_path), env)
    try:
        children = wait_started(psutil.Process(first.pid))
        ports = {c.laddr.port for child in children for c in child.net_connections()}
        assert {int(env[f"GONGJI_{n.upper()}_ADDR"].rsplit(":", 1)[1]) for n in PARTS} <= ports

        second = gongji_run(str(tmp_path), env)
        assert second.wait(30) == 1
        said = second.stderr.read().decode().strip().splitlines()
        assert len(said) == 1, said
        assert f"pid {first.pid}" in said[0] and f"kill {first.pid}" in said[0]

        first.kill()  # kill -9: no chance to stop anything itself
        _, alive = psutil.wait_procs(children, timeout=15)
        assert not alive, f"left running: {[p.cmdline()[:3] for p in alive]}"
    finally:
        first.kill()

    again = gongji_run(str(tmp_path), env)  # over the same data, on the same ports
    try:
        wait_started(psutil.Process(again.pid))
    finally:
        again.terminate()
        assert again.wait(30) == 0


def test_a_port_held_by_another_program_stops_the_start_with_one_line(tmp_path):
    env = stack_env()
    with socket.socket() as squatter:
        port = int(env["GONGJI_BINDING_ADDR"].rsplit(":", 1)[1])
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        started = gongji_run(str(tmp_path), env)
        assert started.wait(30) == 1
    said = started.stderr.read().decode().strip().splitlines()
    assert said == [
        f"gongji run: 127.0.0.1:{port} (binding) is taken by another program; stop it, or move "
        "the stack with GONGJI_BINDING_ADDR"
    ]
    assert not (tmp_path / "run.json").exists()


def test_a_stack_on_an_embedded_cluster_starts_each_listed_replica(tmp_path):
    """GONGJI_REDIS_MODE=cluster without a URL: three Redis masters on GONGJI_REDIS_PORT and
    the two ports after it; an address list: one process per address, each SERVING."""
    from services.common.redisdb import free_cluster_port
    from services.stack.launcher import Stack

    env = {**stack_env(), "GONGJI_REDIS_MODE": "cluster", "GONGJI_METRICS_ADDR": "off"}
    env.update({f"GONGJI_{n.upper()}_ADDR": f"127.0.0.1:{free_port()},127.0.0.1:{free_port()}"
                for n in PARTS})  # fmt: skip
    stack = Stack(tmp_path, env=env, redis_port=free_cluster_port()).start()
    try:
        assert sorted(stack.pids()) == sorted(
            [f"{n}{i}" for n in PARTS for i in (1, 2)] + ["redis1", "redis2", "redis3"]
        )
        assert all(stack.health(n) == "SERVING" for n in PARTS)
    finally:
        stack.stop()
    assert not any(psutil.pid_exists(p) and psutil.Process(p).status() != "zombie"
                   for p in stack.pids().values())  # fmt: skip
