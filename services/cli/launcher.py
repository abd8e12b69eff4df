"""`gongji run`: the whole stack on one machine, the way `make run` starts it.

Starts the embedded Redis (unless GONGJI_REDIS_URL names one), then each service as its own
process with the Redis URL passed down, and stops them all, services first, on SIGINT/SIGTERM
or when any of them exits.
"""

from __future__ import annotations

import logging
import os
import pathlib
import signal
import subprocess
import sys
import time
from types import FrameType

from services.common.redisdb import EmbeddedRedis

log = logging.getLogger("gongji.launcher")

SERVICES = ("account", "binding", "settlement")
EMBEDDED_PORT = 6390


def run(var_dir: pathlib.Path, services: tuple[str, ...] = SERVICES) -> int:
    env = dict(os.environ)
    redis: EmbeddedRedis | None = None
    if not env.get("GONGJI_REDIS_URL"):
        fsync = env.get("GONGJI_REDIS_APPENDFSYNC", "always")
        redis = EmbeddedRedis(var_dir / "redis", EMBEDDED_PORT, fsync=fsync).start()
        env["GONGJI_REDIS_URL"] = redis.url
        log.info("embedded redis", extra={"fields": {"url": redis.url, "appendfsync": fsync}})
    children: dict[str, subprocess.Popen[bytes]] = {}
    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        for name in services:
            children[name] = subprocess.Popen([sys.executable, "-m", f"services.{name}"], env=env)
        log.info("stack started", extra={"fields": {"services": ",".join(services)}})
        while not stopping:
            if redis and not redis.alive():
                log.error("embedded redis exited; stopping the stack")
                return 1
            for name, child in children.items():
                if child.poll() is not None:
                    fields = {"service": name, "code": child.returncode}
                    log.error("service exited", extra={"fields": fields})
                    return 1
            time.sleep(0.2)
        return 0
    finally:
        _stop_all(children)
        if redis:
            redis.stop()
        log.info("stack stopped")


def _stop_all(children: dict[str, subprocess.Popen[bytes]]) -> None:
    for child in children.values():
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 15
    for child in children.values():
        try:
            child.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
