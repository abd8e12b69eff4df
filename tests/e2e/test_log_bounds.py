"""What a hostile caller can put in the service processes' logs: a refused request with a 1 MB
request_id may not fill the disks, and a person id glued to letters inside a request_id is
masked like any other (rule I3)."""

from __future__ import annotations

import datetime as dt
import pathlib
import re
from collections.abc import AsyncIterator

import grpc
import pytest
import redis.asyncio as aioredis

from gongji.account.v1 import account_pb2 as pb
from gongji.binding.v1 import binding_pb2 as bpb
from gongji.settlement.v1 import settlement_pb2 as spb
from services.common.ids import make_person_id, mask
from tests import support
from tests.e2e.stack import Process, addresses, env_for, wait_serving

LINE_LIMIT = 2048  # bytes of one log line
ONE_MB = "r" * 1_000_000  # under the servers' 1 MiB message limit: read, then refused
PID = make_person_id("430102", dt.date(1990, 1, 1), 123)
PID_X = make_person_id("110105", dt.date(1949, 12, 31), 2)  # ends in X
GLUED = (f"req{PID}abc", f"req{PID_X.lower()}z", f"{PID}-{PID_X}", f"x9{PID}9")
UNMASKED_ID = re.compile(r"[0-9]{17}[0-9Xx]")


def _requests(request_id: str) -> list[tuple[str, str, object]]:
    """A call to each service that logs its request_id."""
    return [
        ("account", "OpenAccount", pb.OpenAccountRequest(request_id=request_id)),
        ("binding", "RemoveBinding",
         bpb.RemoveBindingRequest(binding_id="B4343" + "ab" * 8, request_id=request_id)),
        ("settlement", "CancelSettlement",
         spb.CancelSettlementRequest(settlement_id="S" + "ab" * 12, request_id=request_id)),
    ]  # fmt: skip


@pytest.fixture(scope="module")
async def logs(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """Every line the three services logged while they answered the hostile requests."""
    url = redis_url.rsplit("/", 1)[0] + "/13"
    raw = aioredis.Redis.from_url(url)
    folder = tmp_path_factory.mktemp("logs")
    addrs = addresses()
    running = []
    try:
        for name in ("account", "binding", "settlement"):
            env = {**env_for(name, url, addrs), "GONGJI_LOG_LEVEL": "DEBUG"}
            running.append(Process(name, env, folder / f"{name}.log").start())
            await wait_serving(addrs[name], f"gongji.{name}.v1.{name.title()}Service")
        for request_id in (ONE_MB, *GLUED):
            for service, rpc, request in _requests(request_id):
                await _refused(addrs, service, rpc, request)
    finally:
        for p in running:
            p.stop()
        await raw.flushdb()
        await raw.aclose()
    yield "\n".join(_read(f) for f in sorted(folder.glob("*.log")))


async def _refused(addrs: dict[str, str], service: str, rpc: str, request: object) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await support.as_(addrs, service, "operator", "desk-7", rpc, request)
    details = info.value.details() or ""
    assert len(details) < 1_000 and not UNMASKED_ID.search(details), "rule I3"


def _read(path: pathlib.Path) -> str:
    return path.read_text(encoding="utf-8", errors="replace")


def test_a_megabyte_request_id_leaves_no_log_line_longer_than_2_kb(logs):
    lines = logs.splitlines()
    assert sum("rpc" in line for line in lines) >= 3 * (1 + len(GLUED)), "each call is logged"
    too_long = [line[:200] for line in lines if len(line.encode()) > LINE_LIMIT]
    assert not too_long, too_long[:1]
    cut = [line for line in lines if f"[cut, {len(ONE_MB)} chars]" in line]
    assert len(cut) == 3, "each service shows that it cut the request_id"


def test_a_person_id_glued_to_letters_in_a_request_id_is_masked(logs):  # rule I3
    assert not [pid for pid in (PID, PID_X, PID_X.lower()) if pid in logs]
    leaked = [m[0] for m in UNMASKED_ID.finditer(logs)]
    assert not leaked, leaked[:4]
    assert f"req{mask(PID)}abc" in logs, "the rest of the request_id is still shown"
