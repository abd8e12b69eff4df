"""The account service as users run it: its own process, health, reflection, logs, drain."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from gongji.account.v1 import account_pb2_grpc
from services.common.redisdb import free_port
from tests import support
from tests.integration.accounts import open_account

SERVICE = "gongji.account.v1.AccountService"


def start(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "services.account"],
        env={**os.environ, **env},
        stderr=subprocess.PIPE,
    )


async def wait_serving(channel: grpc.aio.Channel) -> health_pb2_grpc.HealthStub:
    health = health_pb2_grpc.HealthStub(channel)
    for _ in range(200):
        try:
            r = await health.Check(health_pb2.HealthCheckRequest(service=SERVICE), timeout=1)
            if r.status == health_pb2.HealthCheckResponse.SERVING:
                return health
        except grpc.aio.AioRpcError:
            pass
        await asyncio.sleep(0.05)
    raise AssertionError("the service never became SERVING")


async def test_the_service_serves_health_reflection_and_drains_on_sigterm(redis_url):
    port = free_port()
    env = {"GONGJI_REDIS_URL": redis_url, "GONGJI_LISTEN_ADDR": f"127.0.0.1:{port}",
           "GONGJI_DRAIN_GRACE_MS": "1000"}  # fmt: skip
    proc = start(env)
    try:
        async with support.channel(f"127.0.0.1:{port}") as channel:
            health = await wait_serving(channel)
            reflect = reflection_pb2_grpc.ServerReflectionStub(channel)
            answers = reflect.ServerReflectionInfo(
                iter([reflection_pb2.ServerReflectionRequest(list_services="")])
            )
            async for answer in answers:
                names = {s.name for s in answer.list_services_response.service}
                break
            assert {SERVICE, "grpc.health.v1.Health"} <= names

            pid = await open_account(account_pb2_grpc.AccountServiceStub(channel), 100)

            watch = health.Watch(health_pb2.HealthCheckRequest(service=SERVICE))
            first = await watch.read()
            assert first.status == health_pb2.HealthCheckResponse.SERVING
            proc.send_signal(signal.SIGTERM)
            draining = await asyncio.wait_for(watch.read(), 5)
            assert draining.status == health_pb2.HealthCheckResponse.NOT_SERVING
        assert proc.wait(10) == 0
    finally:
        proc.kill()
    lines = [json.loads(line) for line in proc.stderr.read().decode().splitlines() if line]
    rpc_lines = [line for line in lines if line["message"] == "rpc"]
    assert {line["method"] for line in rpc_lines} >= {f"/{SERVICE}/OpenAccount"}
    assert all(line["severity"] for line in lines)
    text = json.dumps(lines)
    assert pid not in text  # rule I3: person ids are masked in logs


def test_without_a_redis_url_the_service_stops_with_a_clear_message():
    env = {k: v for k, v in os.environ.items() if k != "GONGJI_REDIS_URL"}
    result = subprocess.run(
        [sys.executable, "-m", "services.account"], env=env, capture_output=True, timeout=30
    )
    assert result.returncode != 0
    assert b"GONGJI_REDIS_URL is not set" in result.stderr


def test_a_malformed_policy_file_stops_the_service(tmp_path, redis_url):  # rule B13
    bad = tmp_path / "policy.toml"
    bad.write_text("[default]\nmax_bindings = 'ten'\n")
    env = {**os.environ, "GONGJI_REDIS_URL": redis_url, "GONGJI_POLICY_FILE": str(bad),
           "GONGJI_LISTEN_ADDR": f"127.0.0.1:{free_port()}"}  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-m", "services.account"], env=env, capture_output=True, timeout=30
    )
    assert result.returncode != 0
    assert b"max_bindings must be a whole number" in result.stderr
