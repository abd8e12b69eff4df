"""Fixtures for every tier: a real Redis, and real servers on port 0.

Redis (never fakeredis: the scripts are Lua): GONGJI_REDIS_URL if set; else a testcontainers
Redis when a Docker engine answers; else a throwaway `redis-server` (the one the project
installs) on a free port.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator

import pytest
import redis.asyncio as aioredis

from services.common.redisdb import EmbeddedRedis, connect, free_port
from tests.support import SECRET_FILE

assert SECRET_FILE  # made before any fixture starts a service process that needs it


def _docker_answers() -> bool:
    if not shutil.which("docker"):
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if url := os.environ.get("GONGJI_REDIS_URL"):
        yield url
    elif _docker_answers():
        from testcontainers.redis import RedisContainer

        with RedisContainer("redis:7") as container:
            host, port = container.get_container_host_ip(), container.get_exposed_port(6379)
            yield f"redis://{host}:{port}/0"
    else:
        server = EmbeddedRedis(tmp_path_factory.mktemp("redis"), free_port()).start()
        try:
            yield server.url
        finally:
            server.stop()


@pytest.fixture(scope="session")
async def redis(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = connect(redis_url)  # the services' own client
    await client.flushdb()
    yield client
    with contextlib.suppress(Exception):
        await client.aclose()
