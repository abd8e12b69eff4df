"""With an exporter configured (OTEL_TRACES_EXPORTER), one Settle is one trace across the
services: the settlement server's span, its call to the account service and the account
server's span share a trace id, each span the child of the one before. A watch (a stream) is one
span too, its polls of the account service its children. Health checks make no spans."""

from __future__ import annotations

import json
import os
import pathlib

from gongji.account.v1 import account_pb2_grpc
from gongji.settlement.v1 import settlement_pb2_grpc
from services.common.redisdb import free_port
from services.stack.launcher import Stack
from tests import support
from tests.integration.bindings import person
from tests.integration.test_settlement import bill
from tests.integration.watching import events, watch

SETTLE = "/gongji.settlement.v1.SettlementService/Settle"
PAY = "/gongji.account.v1.AccountService/PayFromAccounts"
WATCH = "/gongji.settlement.v1.SettlementService/WatchPayments"
FOLLOW = "/gongji.account.v1.AccountService/FollowEntries"


def spans_in(text: str) -> list[dict]:
    """The console exporter writes one JSON document per span, one after another."""
    decoder, found, at = json.JSONDecoder(), [], 0
    while (at := text.find("{", at)) != -1:
        span, at = decoder.raw_decode(text, at)
        found.append(span)
    return found


def traced_stack(tmp_path: pathlib.Path, env: dict[str, str]) -> Stack:
    """The stack with its spans in spans.json and its logs in log (the files stay open in
    the children, which write to them until they stop)."""
    with open(tmp_path / "spans.json", "wb") as spans, open(tmp_path / "log", "wb") as log:
        return Stack(tmp_path, env=env, redis_port=free_port(), output=log, stdout=spans).start()


async def test_one_settle_is_one_trace_across_the_services(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "GONGJI_REDIS_URL"}
    env.update({f"GONGJI_{n.upper()}_ADDR": f"127.0.0.1:{free_port()}"
                for n in ("account", "binding", "settlement")})  # fmt: skip
    env["OTEL_TRACES_EXPORTER"] = "console"
    stack = traced_stack(tmp_path, env)
    try:
        async with support.channel(stack.address("account")) as a:
            patient = await person(account_pb2_grpc.AccountServiceStub(a), 1990, 2_000)
        async with support.channel(stack.address("settlement")) as s:
            settlement = settlement_pb2_grpc.SettlementServiceStub(s)
            watching = await watch(settlement, patient)
            settled = await settlement.Settle(bill(patient, 500), timeout=10)
            [event] = await events(watching, 1)
            watching.cancel()
    finally:
        stack.stop()  # a drain ends with the buffered spans written out
    found = spans_in((tmp_path / "spans.json").read_text())
    assert settled.legs
    by_name: dict[str, list[dict]] = {}
    for span in found:
        by_name.setdefault(span["name"], []).append(span)
    settle = next(s for s in by_name[SETTLE] if s["kind"] == "SpanKind.SERVER")
    trace = settle["context"]["trace_id"]
    calls = [s for s in by_name[PAY] if s["context"]["trace_id"] == trace]
    client = next(s for s in calls if s["kind"] == "SpanKind.CLIENT")
    server = next(s for s in calls if s["kind"] == "SpanKind.SERVER")
    assert client["parent_id"] == settle["context"]["span_id"]
    assert server["parent_id"] == client["context"]["span_id"]
    assert settle["resource"]["attributes"]["service.name"] == "gongji-settlement"
    assert server["resource"]["attributes"]["service.name"] == "gongji-account"
    assert event.settlement_id == settled.settlement_id
    streamed = next(s for s in by_name[WATCH] if s["kind"] == "SpanKind.SERVER")
    polls = [s for s in by_name[FOLLOW] if s["kind"] == "SpanKind.CLIENT"]
    assert polls and all(p["parent_id"] == streamed["context"]["span_id"] for p in polls)
    assert not any("Health" in name for name in by_name)
    text = json.dumps(found)  # no token and no person in any span
    assert "Bearer" not in text and patient not in text
