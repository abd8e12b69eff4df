"""Hostile input through the real service processes, and personal data in their logs.

The fuzz test draws requests for every RPC from its message descriptor (hypothesis): ids of
real accounts, bindings and settlements mixed with boundary values, int64 extremes, unknown
enum numbers, control characters and bidi overrides, strings past every limit and past the
servers' message size, repeated fields of thousands of items. No answer may be INTERNAL or
UNKNOWN, no call may hang, a refused request leaves every key it names as it was, and every
process still serves afterwards. Then every line the processes logged is scanned for the
person ids and names the run used (rule I3)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import pathlib
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
import redis.asyncio as aioredis
from google.protobuf import descriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from gongji.account.v1 import account_pb2 as pb
from gongji.account.v1 import account_pb2_grpc
from gongji.binding.v1 import binding_pb2 as bpb
from gongji.binding.v1 import binding_pb2_grpc
from gongji.settlement.v1 import settlement_pb2 as spb
from gongji.settlement.v1 import settlement_pb2_grpc
from services.common.ids import mask
from tests import support
from tests.e2e.stack import Process, addresses, env_for, wait_serving
from tests.integration.accounts import open_account, pay, rid
from tests.integration.bindings import CHILD, create
from tests.integration.test_settlement import HOSPITAL, bill
from tests.rpc_cases import CASES, World, answer

# x every RPC of tests.rpc_cases.CASES: about 700 requests. (The simulator sends the hostile
# values of every mutating RPC at scale; this run keeps every RPC, reads too, and the processes.)
EXAMPLES_PER_RPC = 15
SERVICES = {
    "account": (pb, "AccountService", account_pb2_grpc.AccountServiceStub),
    "binding": (bpb, "BindingService", binding_pb2_grpc.BindingServiceStub),
    "settlement": (spb, "SettlementService", settlement_pb2_grpc.SettlementServiceStub),
}
RPCS = [
    (service, m.name)
    for service, (module, name, _) in SERVICES.items()
    for m in module.DESCRIPTOR.services_by_name[name].methods
]
NAMES = ("王小明", "Zhang Wei", "欧阳娜娜")  # the names the run opens accounts with
PHONE = "13912345678"  # the phone given at the run's first binding
FORBIDDEN = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.DEADLINE_EXCEEDED}


@dataclasses.dataclass
class Stack:
    addrs: dict[str, str]
    processes: list[Process]
    logs: pathlib.Path
    raw: aioredis.Redis
    stubs: dict[str, Any]
    pool: list[str] = dataclasses.field(default_factory=list)  # real ids to draw from
    people: list[str] = dataclasses.field(default_factory=list)


@pytest.fixture(scope="module")
async def stack(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    """The three services over a database of their own (14), logging to files."""
    url = redis_url.rsplit("/", 1)[0] + "/14"
    raw = aioredis.Redis.from_url(url)
    await raw.flushdb()
    logs = tmp_path_factory.mktemp("logs")
    addrs = addresses()
    running = []
    try:
        for name in SERVICES:
            env = {**env_for(name, url, addrs), "GONGJI_LOG_LEVEL": "DEBUG"}
            running.append(Process(name, env, logs / f"{name}.log").start())
            await wait_serving(addrs[name], f"gongji.{name}.v1.{name.title()}Service")
        channels = {n: support.channel(a) for n, a in addrs.items()}
        stubs = {n: SERVICES[n][2](c) for n, c in channels.items()}
        s = Stack(addrs, running, logs, raw, stubs)
        await _seed(s)
        yield s
        for c in channels.values():
            await c.close()
    finally:
        for p in running:
            p.stop()
        await raw.flushdb()
        await raw.aclose()


async def _seed(s: Stack) -> None:
    """Accounts, a binding, a payment, a settlement and a premium whose ids the fuzz draws."""
    account, binding, settlement = s.stubs["account"], s.stubs["binding"], s.stubs["settlement"]
    parent = await _named(account, NAMES[0], 1960, 100_000)
    child = await _named(account, NAMES[1], 1990, 5_000)
    kid = await _named(account, NAMES[2], 2012, 0, resident=True)
    with_phone = create(parent, child, CHILD)
    with_phone.beneficiary_phone = PHONE
    b1 = await binding.CreateBinding(with_phone, timeout=10)
    await binding.CreateBinding(create(parent, kid, CHILD), timeout=10)
    paid = await pay(account, child, 10)
    settled = await settlement.Settle(bill(child, 7_000), timeout=10)
    s.people = [parent, child, kid]
    s.pool = [
        parent, child, kid, parent.lower(), b1.binding_id, paid.payment_id, settled.settlement_id,
        settled.medins_setl_id, settled.legs[0].entry_id, HOSPITAL, "P43010500003",
        "H43019999999", "PICC-HN", "430102", "430103", "610402", "110000", rid(),
    ]  # fmt: skip


async def _named(account: Any, name: str, year: int, balance: int, resident: bool = False) -> str:
    pid = support.new_pid("430102", dt.date(year, 3, 3))
    return await open_account(account, balance, resident=resident, pid=pid, name=name)


# -- what the fuzz draws -----------------------------------------------------------------------
_INT32 = (0, 1, -1, 2**31 - 1, -(2**31), 500, 501, 100, 101)
_INT64 = (0, 1, -1, 2**63 - 1, -(2**63), 10**12, 10**12 + 1, 2**53, 2**53 + 1, -(10**12))
_HOSTILE = (
    "", " ", "\x00", "a\x00b", "\x1b[31m", "\r\n", "\u202eevil", "\u2066x\u2069", "\x7f",
    "\u0085", "'; DROP TABLE x; --", "{acct}", "*", "x" * 257, "字" * 300, "x" * 100_000,
    "9" * 18, "43010219800101123X", "2026-02-30", "2026-13-01", "0000-00-00", "1899-12-31",
    "2999-01-01", "H4301050000", "P4301050000X", "\ud7ff", "\U0001f600",
)  # fmt: skip
_TOO_BIG = "x" * (1 << 20)  # past the servers' 1 MiB message limit


def _today() -> str:
    return dt.date.today().isoformat()


_TIMESTAMP = "google.protobuf.Timestamp"
_FREE_TEXT = ("name", "memo", "reason", "reference", "payee")
_WORDS = ("张三", "退费", "2026-11 allocation", "heirs")


_UNSAFE = ("\x00", "\x1b", "\n", "\x7f", "\u0085", "\u202e", "\u2066", "\u202a")


def _dates() -> st.SearchStrategy[str]:
    today = dt.date.today()
    days = (0, -1, -40, 1, 400)
    return st.sampled_from([(today + dt.timedelta(days=d)).isoformat() for d in days])


def strings(name: str, pool: list[str]) -> st.SearchStrategy[str]:
    """Mostly what the field holds when it is right, so that a request gets past its other
    fields' checks; otherwise anything hostile."""
    hostile = st.one_of(
        st.sampled_from(_HOSTILE),
        st.text(st.characters(blacklist_categories=("Cs",)), max_size=40),
        st.just(_TOO_BIG),
    )
    if name in _FREE_TEXT:
        usual = st.sampled_from(_WORDS)
        hostile = st.one_of(  # a control or bidi character inside ordinary text
            hostile, st.builds(lambda w, c: w + c + w, usual, st.sampled_from(_UNSAFE))
        )
    elif "date" in name:
        usual = _dates()
    elif name.endswith(("_id", "_ids", "_code", "_no", "_token")):
        usual = st.one_of(st.sampled_from(pool), st.sampled_from(pool).map(str.lower))
    else:
        usual = st.one_of(st.sampled_from(pool), _dates(), st.sampled_from(("", "10", "-1")))
    return st.one_of(usual, usual, hostile)


def values(
    field: descriptor.FieldDescriptor, pool: list[str], depth: int
) -> st.SearchStrategy[Any]:
    t = field.type
    if t == field.TYPE_MESSAGE:
        if field.message_type.full_name == _TIMESTAMP:
            seconds = st.one_of(st.sampled_from(_INT64), st.integers(-(2**40), 2**40))
            return st.builds(lambda s, n: {"seconds": s, "nanos": n}, seconds,
                             st.sampled_from((0, 999_999_999, -1, 2**31 - 1)))  # fmt: skip
        return messages(field.message_type, pool, depth + 1)
    if t == field.TYPE_STRING:
        return strings(field.name, pool)
    if t == field.TYPE_BYTES:
        return st.one_of(st.binary(max_size=64), st.just(b"{" * 5000))
    if t == field.TYPE_BOOL:
        return st.booleans()
    if t == field.TYPE_ENUM:
        known = st.sampled_from([v.number for v in field.enum_type.values])
        return st.one_of(known, known, st.sampled_from((-1, 99, 2**31 - 1, -(2**31))))
    if field.name == "year":
        this = dt.date.today().year
        return st.one_of(st.sampled_from((this, this + 1)), st.sampled_from(_INT32))
    small = st.integers(1, 50_000)
    if t in (field.TYPE_INT32, field.TYPE_SINT32, field.TYPE_SFIXED32):
        return st.one_of(small, st.sampled_from(_INT32), st.integers(-(2**31), 2**31 - 1))
    return st.one_of(small, small, st.sampled_from(_INT64), st.integers(-(2**63), 2**63 - 1))


def messages(d: descriptor.Descriptor, pool: list[str], depth: int = 0) -> st.SearchStrategy[Any]:
    fields = {}
    for f in d.fields:
        one = values(f, pool, depth)
        if f.is_repeated:
            many = st.lists(one, min_size=1, max_size=3)
            # thousands of one item: a small one (3,000 copies of a 1 MiB string is the
            # client's problem, not the server's)
            huge = one.filter(lambda v: len(repr(v)) < 2_000).map(lambda v: [v] * 3000)
            one = st.one_of(many, many, st.just([]), huge) if depth == 0 else many
        fields[f.name] = st.one_of(one, one, one, st.none()) if depth < 2 else st.none()
    return st.fixed_dictionaries(fields).map(
        lambda drawn: {k: v for k, v in drawn.items() if v is not None}
    )


def build(d: descriptor.Descriptor, drawn: dict[str, Any]) -> Message:
    """The message `messages` drew, as the protobuf class of `d`."""
    message = GetMessageClass(d)()
    for name, value in drawn.items():
        spoil(message, (d.fields_by_name[name],), value)
    return message


def _method(service: str, rpc: str) -> descriptor.MethodDescriptor:
    module, name, _ = SERVICES[service]
    return module.DESCRIPTOR.services_by_name[name].methods_by_name[rpc]


def hostile(field: descriptor.FieldDescriptor, pool: list[str]) -> st.SearchStrategy[Any]:
    """A value no careful caller sends for this field."""
    t = field.type
    if t == field.TYPE_STRING:
        inside = st.builds(lambda w, c: w + c + w, st.sampled_from((*_WORDS, *pool)),
                           st.sampled_from(_UNSAFE))  # fmt: skip
        one: st.SearchStrategy[Any] = st.one_of(
            st.sampled_from(_HOSTILE), inside, st.sampled_from(pool), st.just(_TOO_BIG),
            st.text(st.characters(blacklist_categories=("Cs",)), max_size=40),
        )  # fmt: skip
    elif t == field.TYPE_ENUM:
        one = st.sampled_from((-1, 99, 2**31 - 1, -(2**31)))
    elif t in (field.TYPE_INT32, field.TYPE_INT64, field.TYPE_SINT32, field.TYPE_SINT64):
        one = st.sampled_from(_INT32 if t in (field.TYPE_INT32, field.TYPE_SINT32) else _INT64)
    else:
        one = values(field, pool, 1)
    if not field.is_repeated:
        return one
    small = one.filter(lambda v: len(repr(v)) < 2_000)
    return st.one_of(st.just([]), st.lists(one, min_size=1, max_size=3),
                     small.map(lambda v: [v] * 3000))  # fmt: skip


def _paths(d: descriptor.Descriptor, depth: int = 0) -> list[tuple[Any, ...]]:
    """Every field of a request, and every field of the messages it holds (one level down)."""
    out: list[tuple[Any, ...]] = []
    for f in d.fields:
        out.append((f,))
        inner = f.type == f.TYPE_MESSAGE and f.message_type.full_name != _TIMESTAMP
        if inner and depth == 0:
            out += [(f, *rest) for rest in _paths(f.message_type, 1)]
    return out


def spoil(request: Message, path: tuple[Any, ...], value: Any) -> None:
    """Put `value` at `path` (a field, or a field of the first message a field holds)."""
    target = request
    for f in path[:-1]:
        holder = getattr(target, f.name)
        if f.is_repeated and not len(holder):
            holder.add()
        target = holder[0] if f.is_repeated else holder
    field = path[-1]
    items = value if field.is_repeated else [value]
    if field.type == field.TYPE_MESSAGE:
        items = [build(field.message_type, item) for item in items]
    if field.is_repeated:
        del getattr(target, field.name)[:]
        getattr(target, field.name).extend(items)
    elif field.type == field.TYPE_MESSAGE:
        getattr(target, field.name).CopyFrom(items[0])
    else:
        setattr(target, field.name, items[0])


@pytest.mark.parametrize(("service", "rpc"), RPCS, ids=[r for _, r in RPCS])
@settings(max_examples=EXAMPLES_PER_RPC, deadline=None, database=None,
          suppress_health_check=list(HealthCheck),
          phases=(Phase.explicit, Phase.generate, Phase.shrink))  # fmt: skip
@given(data=st.data())
async def test_hostile_requests_get_clear_refusals_and_change_nothing(stack, service, rpc, data):
    """Two in three requests are a valid one with one or two fields spoilt; the rest are drawn
    whole."""
    method = _method(service, rpc)
    if data.draw(st.integers(0, 2), label="whole") == 0:
        request = build(method.input_type, data.draw(messages(method.input_type, stack.pool)))
    else:
        case = await CASES[rpc](World(**stack.stubs, addresses=stack.addrs))
        request = case.request
        paths = _paths(method.input_type)
        for path in data.draw(st.lists(st.sampled_from(paths), min_size=1, max_size=2,
                                       unique=True), label="fields"):  # fmt: skip
            spoil(request, path, data.draw(hostile(path[-1], stack.pool), label=path[-1].name))
    before = await support.footprint(stack.raw, request)
    try:  # a watch open and waiting for a payment after a second is an answer too
        await answer(stack.stubs[service], rpc, request, quiet_s=1.0)
    except grpc.aio.AioRpcError as e:
        assert e.code() not in FORBIDDEN, (rpc, e.code(), e.details())
        assert not any(p in (e.details() or "") for p in stack.people), "rule I3"
        if e.code() != grpc.StatusCode.RESOURCE_EXHAUSTED:  # refused before it was read
            assert support.reason_of(e), (rpc, e.code(), e.details())
        after = await support.footprint(stack.raw, request)
        assert after == before, f"a refused {rpc} changed {set(after) ^ set(before)}"


async def test_every_process_still_serves_after_the_fuzz(stack):
    for p in stack.processes:
        assert p.proc is not None and p.proc.poll() is None, f"{p.name} exited"
        await wait_serving(stack.addrs[p.name], f"gongji.{p.name}.v1.{p.name.title()}Service", 5)


async def test_no_person_id_or_name_in_any_log_line(stack):  # rule I3
    """After the fuzz (which sent these ids in every field), a refusal naming a person, and a
    scenario through all three services: every log line of every process."""
    settlement = stack.stubs["settlement"]
    for pid in stack.people:
        async with support.channel(stack.addrs["account"], "citizen", pid) as own:
            stub = account_pb2_grpc.AccountServiceStub(own)
            await stub.GetAccount(pb.GetAccountRequest(person_id=pid), timeout=10)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            other = stack.people[0] if pid != stack.people[0] else stack.people[1]
            await settlement.Settle(bill(pid, 10, credential_holder_id=other))
        assert pid not in (info.value.details() or "")
    text = "\n".join(f.read_text(encoding="utf-8", errors="replace")
                     for f in sorted(stack.logs.glob("*.log")))  # fmt: skip
    lines = text.splitlines()
    assert len(lines) > 1_000, "the processes must have logged the run"
    for secret in (*stack.people, *(p.lower() for p in stack.people), *NAMES, PHONE):
        leaked = [line for line in lines if secret in line]
        assert not leaked, f"{mask(secret)} appears unmasked: {leaked[:2]}"
    assert any(mask(stack.people[0]) in line for line in lines), "a citizen is logged, masked"
