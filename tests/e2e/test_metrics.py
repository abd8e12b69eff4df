"""A service's /metrics as a Prometheus server scrapes it: every RPC counted by method, code and
reason with its latency, Redis reachability, and no personal data in any label."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import urllib.request

import grpc
from prometheus_client.parser import text_string_to_metric_families

from gongji.account.v1 import account_pb2 as pb
from gongji.account.v1 import account_pb2_grpc
from services.common.redisdb import free_port
from tests import support
from tests.e2e.test_process import start, wait_serving
from tests.integration.accounts import open_account

OPEN = "/gongji.account.v1.AccountService/OpenAccount"
GET = "/gongji.account.v1.AccountService/GetAccount"


def scrape(address: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://{address}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def test_metrics_count_every_rpc_by_code_and_reason_and_name_no_person(redis_url):
    listen, metrics = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    proc = start({"GONGJI_REDIS_URL": redis_url, "GONGJI_LISTEN_ADDR": listen,
                  "GONGJI_METRICS_ADDR": metrics})  # fmt: skip
    try:
        async with support.channel(listen) as channel:
            await wait_serving(channel)
            stub = account_pb2_grpc.AccountServiceStub(channel)
            people = [await open_account(stub) for _ in range(3)]
            missing = support.new_pid()
            for _ in range(2):
                code, reason = await support.refused(
                    stub.GetAccount(pb.GetAccountRequest(person_id=missing), timeout=5)
                )
                assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "ACCOUNT_NOT_FOUND")
            await asyncio.sleep(1.5)  # a health probe of Redis has run
            seen = scrape(metrics)
    finally:
        proc.terminate()
        proc.wait(10)
    assert seen[("gongji_rpc_total", (("code", "OK"), ("method", OPEN), ("reason", "")))] == 3
    refused = (("code", "NOT_FOUND"), ("method", GET), ("reason", "ACCOUNT_NOT_FOUND"))
    assert seen[("gongji_rpc_total", refused)] == 2
    assert seen[("gongji_rpc_duration_seconds_count", (("method", OPEN),))] == 3
    assert seen[("gongji_redis_up", ())] == 1
    labels = " ".join(v for _, pairs in seen for _, v in pairs)
    assert not any(pid in labels for pid in [*people, missing])


def test_a_taken_metrics_port_stops_the_service_with_one_line(redis_url):
    port = free_port()
    metrics = f"127.0.0.1:{port}"
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        env = {**os.environ, "GONGJI_REDIS_URL": redis_url, "GONGJI_METRICS_ADDR": metrics,
               "GONGJI_LISTEN_ADDR": f"127.0.0.1:{free_port()}"}  # fmt: skip
        done = subprocess.run([sys.executable, "-m", "services.account"], env=env,
                              capture_output=True, timeout=30)  # fmt: skip
    assert done.returncode != 0
    last = done.stderr.decode().strip().splitlines()[-1]
    assert last.startswith(f"account: cannot serve metrics on {metrics}: "), last
