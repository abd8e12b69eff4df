"""The account service as users run it: its own process, health, reflection, logs, drain."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from gongji.account.v1 import account_pb2_grpc
from services.common.config import Tls
from services.common.redisdb import EmbeddedRedis, free_port
from services.stack.launcher import spawn
from tests import support
from tests.integration.accounts import open_account

SERVICE = "gongji.account.v1.AccountService"


def start(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return spawn("account", {**os.environ, **env}, stderr=subprocess.PIPE)


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


def _refuses_to_start(env: dict[str, str]) -> bytes:
    result = subprocess.run([sys.executable, "-m", "services.account"], env={**os.environ, **env},
                            capture_output=True, timeout=30)  # fmt: skip
    assert result.returncode != 0
    return result.stderr


def test_without_its_secret_or_with_a_bad_setting_the_service_does_not_start(tmp_path, redis_url):
    base = {"GONGJI_REDIS_URL": redis_url, "GONGJI_LISTEN_ADDR": f"127.0.0.1:{free_port()}"}
    missing = str(tmp_path / "nowhere")
    assert b"no auth secret at" in _refuses_to_start({**base, "GONGJI_AUTH_SECRET_FILE": missing})
    short = tmp_path / "short"
    short.write_text("too short")
    assert b"shorter than 32 bytes" in _refuses_to_start(
        {**base, "GONGJI_AUTH_SECRET_FILE": str(short)}
    )
    assert b"not a loopback address" in _refuses_to_start(
        {**base, "GONGJI_LISTEN_ADDR": f"0.0.0.0:{free_port()}"}
    )
    bad_registry = tmp_path / "registry.toml"
    bad_registry.write_text('[institutions."H1"]\ndesignated = true\n')
    assert b"not a valid code" in _refuses_to_start(
        {**base, "GONGJI_REGISTRY_FILE": str(bad_registry)}
    )


async def test_with_authentication_off_every_start_warns(redis_url):
    port = free_port()
    proc = start({"GONGJI_REDIS_URL": redis_url, "GONGJI_LISTEN_ADDR": f"127.0.0.1:{port}",
                  "GONGJI_AUTH": "off", "GONGJI_DRAIN_GRACE_MS": "100"})  # fmt: skip
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            await wait_serving(channel)
            # no token, and still answered
            await open_account(account_pb2_grpc.AccountServiceStub(channel), 0)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        proc.kill()
    lines = [json.loads(line) for line in proc.stderr.read().decode().splitlines() if line]
    warnings = [line for line in lines if "authentication is OFF" in line["message"]]
    assert [w["severity"] for w in warnings] == ["WARNING"]


def test_gongji_token_mints_what_the_services_accept_and_certs_makes_private_keys(tmp_path):
    from services.common.auth import Tokens, read_secret

    env = {**os.environ, "GONGJI_AUTH_SECRET_FILE": str(tmp_path / "secret")}
    gongji = [sys.executable, "-m", "services.cli"]
    made = subprocess.run([*gongji, "certs", "--out", str(tmp_path / "certs")], env=env,
                          capture_output=True, timeout=60)  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert (tmp_path / "secret").stat().st_mode & 0o777 == 0o600
    for name in ("ca", "account", "binding", "settlement", "client"):
        assert (tmp_path / "certs" / f"{name}.key").stat().st_mode & 0o777 == 0o600
        assert (tmp_path / "certs" / f"{name}.pem").read_bytes().startswith(b"-----BEGIN CERT")
    minted = subprocess.run([*gongji, "token", "--role", "citizen", "--sub", "430102198005170012",
                             "--ttl", "60"], env=env, capture_output=True, timeout=30)  # fmt: skip
    assert minted.returncode == 0, minted.stderr
    tokens = Tokens(read_secret(tmp_path / "secret"))
    caller = tokens.verify("Bearer " + minted.stdout.decode().strip())
    assert (caller.role, caller.sub) == ("citizen", "430102198005170012")
    wrong = subprocess.run([*gongji, "token", "--role", "admin", "--sub", "x"], env=env,
                           capture_output=True, timeout=30)  # fmt: skip
    assert wrong.returncode != 0 and b"role must be one of" in wrong.stderr
    for ttl, limit in (("86401", {}), ("601", {"GONGJI_TOKEN_MAX_TTL_S": "600"})):
        long = subprocess.run([*gongji, "token", "--role", "operator", "--sub", "x", "--ttl", ttl],
                              env={**env, **limit}, capture_output=True, timeout=30)  # fmt: skip
        assert long.returncode != 0 and b"GONGJI_TOKEN_MAX_TTL_S" in long.stderr, ttl


def test_the_launcher_makes_the_token_secret_once_readable_by_its_owner_only(tmp_path):
    from services.stack.launcher import Stack

    env = {k: v for k, v in os.environ.items()
           if k not in ("GONGJI_AUTH_SECRET_FILE", "GONGJI_REDIS_URL")}  # fmt: skip
    env["GONGJI_ACCOUNT_ADDR"] = f"127.0.0.1:{free_port()}"
    stack = Stack(tmp_path, ("account",), env=env, redis_port=free_port(),
                  output=subprocess.DEVNULL)  # type: ignore[arg-type]  # fmt: skip
    stack.start()
    try:
        secret = tmp_path / "auth-secret"
        assert secret.stat().st_mode & 0o777 == 0o600
        first = secret.read_bytes()
    finally:
        stack.stop()
    Stack(tmp_path, ("account",), env=env, redis_port=free_port()).start().stop()
    assert secret.read_bytes() == first  # kept across starts: tokens minted before stay valid


async def test_gongji_run_with_certs_speaks_mutual_tls_between_every_part(tmp_path):
    """What docker-compose does, on one machine: each service its own certificate."""
    from gongji.settlement.v1 import settlement_pb2_grpc
    from services.cli import certs
    from services.common.security import channel_credentials
    from services.stack.launcher import Stack
    from tests.integration.test_settlement import bill

    certs.make(tmp_path / "certs")
    env = {k: v for k, v in os.environ.items() if k != "GONGJI_REDIS_URL"}
    env.update({f"GONGJI_{n.upper()}_ADDR": f"127.0.0.1:{free_port()}"
                for n in ("account", "binding", "settlement")})  # fmt: skip
    stack = Stack(tmp_path, env=env, redis_port=free_port(), certs=tmp_path / "certs",
                  output=subprocess.DEVNULL)  # type: ignore[arg-type]  # fmt: skip
    stack.start()
    try:
        client = channel_credentials(Tls(*(stack.client_env[f"GONGJI_TLS_{p}_FILE"]
                                           for p in ("CERT", "KEY", "CA"))))  # fmt: skip
        async with (
            support.channel(stack.address("account"), credentials=client) as a,
            support.channel(stack.address("settlement"), credentials=client) as s,
        ):
            patient = await open_account(account_pb2_grpc.AccountServiceStub(a), 2_000)
            settled = await settlement_pb2_grpc.SettlementServiceStub(s).Settle(
                bill(patient, 500), timeout=10
            )
            assert [(leg.payer_id, leg.amount_fen) for leg in settled.legs] == [(patient, 500)]
        async with support.channel(stack.address("account")) as plain:  # no TLS: turned away
            with pytest.raises(grpc.aio.AioRpcError):
                await open_account(account_pb2_grpc.AccountServiceStub(plain), 0)
    finally:
        stack.stop()


async def test_a_taken_port_stops_the_second_service_with_one_line_and_the_first_serves_on(
    redis_url,
):
    address = f"127.0.0.1:{free_port()}"
    env = {"GONGJI_REDIS_URL": redis_url, "GONGJI_LISTEN_ADDR": address}
    first = start(env)
    try:
        async with support.channel(address) as channel:
            health = await wait_serving(channel)
            second = start(env)
            assert second.wait(20) != 0
            said = second.stderr.read().decode().strip().splitlines()
            assert said[-1] == f"account: cannot listen on {address}: the port is taken (or " \
                               "not this host's)"  # fmt: skip
            for _ in range(10):  # every call still reaches the first one
                r = await health.Check(health_pb2.HealthCheckRequest(service=SERVICE), timeout=1)
                assert r.status == health_pb2.HealthCheckResponse.SERVING
    finally:
        first.kill()


async def test_health_says_not_serving_while_redis_is_down_and_serving_when_it_is_back(tmp_path):
    redis = EmbeddedRedis(tmp_path / "redis", free_port()).start()
    address = f"127.0.0.1:{free_port()}"
    proc = start({"GONGJI_REDIS_URL": redis.url, "GONGJI_LISTEN_ADDR": address})
    try:
        async with support.channel(address) as channel:
            health = await wait_serving(channel)
            statuses = {}
            for name in ("", SERVICE):
                statuses[name] = health.Watch(health_pb2.HealthCheckRequest(service=name))
                first = await statuses[name].read()
                assert first.status == health_pb2.HealthCheckResponse.SERVING
            redis.kill()
            for watch in statuses.values():
                down = await asyncio.wait_for(watch.read(), 10)
                assert down.status == health_pb2.HealthCheckResponse.NOT_SERVING
            redis.start()  # the same port and data
            for watch in statuses.values():
                up = await asyncio.wait_for(watch.read(), 10)
                assert up.status == health_pb2.HealthCheckResponse.SERVING
    finally:
        proc.kill()
        redis.stop()
