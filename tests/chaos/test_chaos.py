"""Chaos under load (docs/ARCHITECTURE.md "Invariants"): many callers settle, cancel, reverse,
pay premiums, suspend and unbind over overlapping families while every service is killed with -9
and restarted, Redis is killed and restarted from its AOF, a settlement replica is paused for a
while, and some callers give up after a few milliseconds. Afterwards, through the
public API only: every acknowledged settlement is there with its legs; every key ever sent is
SETTLED, CANCELLED, ABORTED or unknown, none in flight; every account's ledger sums to its
balance, nothing is held, no balance went negative; every debit is a leg of a settlement that
stands (or a premium paid once) and every cancelled leg was refunded once; and no account paid
after its suspension or its unbinding was acknowledged (rules S2-S13, A2, A6, B11)."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import datetime as dt
import os
import random
import signal
import time
from collections.abc import AsyncIterator

import grpc
import pytest

from gongji.account.v1 import account_pb2 as pb
from gongji.account.v1 import account_pb2_grpc
from gongji.binding.v1 import binding_pb2 as bpb
from gongji.binding.v1 import binding_pb2_grpc
from gongji.settlement.v1 import settlement_pb2 as spb
from gongji.settlement.v1 import settlement_pb2_grpc
from services.common.redisdb import EmbeddedCluster, EmbeddedRedis, free_cluster_port, free_port
from services.common.rpc import reason_of
from tests import support
from tests.e2e.stack import Process, addresses, env_for, wait_serving
from tests.integration.accounts import all_entries, get, rid
from tests.integration.bindings import CHILD, PARENT, create, person
from tests.integration.test_settlement import HOSPITAL, bill

SECONDS = float(os.environ.get("GONGJI_CHAOS_SECONDS", "8"))
CALLERS = 24
SEED = int(os.environ.get("GONGJI_CHAOS_SEED", "8"))
RECOVERY_MS = 1_000
PREMIUM = 30_000
ENV = {"GONGJI_RECOVERY_AFTER_MS": str(RECOVERY_MS), "GONGJI_LOG_LEVEL": "ERROR"}
SERVICES = {"account": "AccountService", "binding": "BindingService",
            "settlement": "SettlementService", "settlement2": "SettlementService"}  # fmt: skip


class Cluster:
    """Redis (one, or a three-master Redis Cluster) and the four service processes (two
    settlement replicas), each restartable."""

    def __init__(self, data: str, redis_cluster: bool = False) -> None:
        self.data, self.redis_cluster = data, redis_cluster
        self.redis_port = free_cluster_port() if redis_cluster else free_port()
        self.redis: EmbeddedRedis | EmbeddedCluster = (
            EmbeddedCluster(data, self.redis_port) if redis_cluster
            else EmbeddedRedis(data, self.redis_port)
        ).start()  # fmt: skip
        self.addrs = {**addresses(), "settlement2": f"127.0.0.1:{free_port()}"}
        self.procs: dict[str, Process] = {}
        self.faults: collections.Counter[str] = collections.Counter()

    async def start(self, name: str) -> None:
        service = name.rstrip("2")
        env = {**env_for(service, self.redis.url, self.addrs), **ENV,
               "GONGJI_LISTEN_ADDR": self.addrs[name]}  # fmt: skip
        if self.redis_cluster:
            env["GONGJI_REDIS_MODE"] = "cluster"
        self.procs[name] = Process(service, env).start()
        await wait_serving(self.addrs[name], f"gongji.{service}.v1.{SERVICES[name]}")

    async def kill(self, name: str) -> None:
        proc = self.procs[name].proc
        assert proc
        proc.kill()
        proc.wait()
        self.faults[f"kill -9 {name}"] += 1
        await asyncio.sleep(0.3)
        await self.start(name)

    async def pause(self, name: str, seconds: float) -> None:
        proc = self.procs[name].proc
        assert proc
        proc.send_signal(signal.SIGSTOP)
        self.faults[f"pause {name}"] += 1
        await asyncio.sleep(seconds)
        proc.send_signal(signal.SIGCONT)

    async def restart_redis(self) -> None:
        if isinstance(self.redis, EmbeddedCluster):  # one master at a time, in turn
            n = self.faults["kill -9 redis"] % len(self.redis.nodes)
            self.faults["kill -9 redis"] += 1
            await asyncio.to_thread(self.redis.restart_node, n)
            return
        self.redis.kill()
        self.faults["kill -9 redis"] += 1
        await asyncio.sleep(0.3)
        self.redis = EmbeddedRedis(self.data, self.redis_port).start()  # from its AOF

    def stop(self) -> None:
        for p in self.procs.values():
            if p.proc and p.proc.poll() is None:
                p.proc.send_signal(signal.SIGCONT)
            p.stop()
        self.redis.kill()


@pytest.fixture(params=["one-redis", "redis-cluster"])
async def cluster(tmp_path, request) -> AsyncIterator[Cluster]:
    c = Cluster(str(tmp_path / "redis"), redis_cluster=request.param == "redis-cluster")
    try:
        for name in SERVICES:
            await c.start(name)
        yield c
    finally:
        c.stop()


@dataclasses.dataclass
class Record:
    """What the callers sent and what they were told."""

    sent: dict[str, spb.SettleRequest] = dataclasses.field(default_factory=dict)
    acknowledged: dict[str, spb.Settlement] = dataclasses.field(default_factory=dict)
    cancels: dict[str, spb.CancelSettlementRequest] = dataclasses.field(default_factory=dict)
    premiums: list[spb.PayResidentPremiumRequest] = dataclasses.field(default_factory=list)
    # person -> [(acknowledged ms, resume sent ms)]; (binder, patient) -> acknowledged ms
    suspended: dict[str, list[tuple[int, int]]] = dataclasses.field(
        default_factory=lambda: collections.defaultdict(list)
    )
    unbound: dict[tuple[str, str], int] = dataclasses.field(default_factory=dict)
    # one suspension of a person at a time, so each window ends at its own resumption
    suspending: dict[str, asyncio.Lock] = dataclasses.field(
        default_factory=lambda: collections.defaultdict(asyncio.Lock)
    )
    outcomes: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)


def now_ms() -> int:
    return int(time.time() * 1000)


async def test_money_survives_crashes_pauses_restarts_and_impatient_callers(cluster):
    rng = random.Random(SEED)
    channels = {name: support.channel(addr) for name, addr in cluster.addrs.items()}
    account = account_pb2_grpc.AccountServiceStub(channels["account"])
    binding = binding_pb2_grpc.BindingServiceStub(channels["binding"])
    replicas = [settlement_pb2_grpc.SettlementServiceStub(channels[n])
                for n in ("settlement", "settlement2")]  # fmt: skip
    try:
        world = await families(account, binding)
        record = Record()
        stop = time.monotonic() + SECONDS
        load = [caller(i, rng, stop, world, record, account, binding, replicas)
                for i in range(CALLERS)]  # fmt: skip
        await asyncio.wait_for(asyncio.gather(chaos(cluster, stop), *load), SECONDS + 120)
        await finish(record, replicas[0])
        await check(world, record, account, replicas[0])
        print(f"chaos: {sum(record.outcomes.values())} operations {dict(record.outcomes)}; "
              f"faults {dict(cluster.faults)}; violations: 0")  # fmt: skip
    finally:
        for channel in channels.values():
            await channel.close()


@dataclasses.dataclass
class World:
    people: list[str]
    patients: list[str]
    bindings: list[bpb.Binding]
    residents: dict[str, str]  # resident kid -> the payer who pays his premium
    credits: dict[str, int]


async def families(account, binding) -> World:
    """Two families like the bank test's (payers overlapping), and resident kids whose premium
    a parent pays."""
    people, bindings, credits = [], [], {}
    for _ in range(2):
        grandma = await person(account, 1940, 2_000_000)
        parents = [await person(account, 1965, 3_000_000), await person(account, 1967, 3_000_000)]
        children = [await person(account, 1990 + i, 500_000) for i in range(3)]
        for parent in parents:
            bindings.append(await binding.CreateBinding(create(grandma, parent, CHILD)))
            for child in children:
                bindings.append(await binding.CreateBinding(create(parent, child, CHILD)))
        for child in children:
            bindings.append(await binding.CreateBinding(create(child, grandma, PARENT)))
        people += [grandma, *parents, *children]
    residents = {}
    for _ in range(3):
        payer = await person(account, 1975, 100_000)
        kid = await person(account, 2010, 0, resident=True)
        await binding.CreateBinding(create(payer, kid, CHILD))
        residents[kid] = payer
    for p in [*people, *residents.values()]:
        credits[p] = (await get(account, p)).balance_fen
    return World(people, list(people), bindings, residents, credits)


async def chaos(cluster: Cluster, stop: float) -> None:
    """One fault after another while the load runs."""
    faults = [
        lambda: cluster.kill("account"),
        lambda: cluster.kill("settlement"),
        lambda: cluster.pause("settlement2", RECOVERY_MS / 1000 * 2.5),
        lambda: cluster.kill("binding"),
        lambda: cluster.restart_redis(),
        lambda: cluster.kill("settlement2"),
        lambda: cluster.pause("settlement", RECOVERY_MS / 1000 * 2.5),
    ]
    step = SECONDS / (len(faults) + 2)
    for fault in faults:
        await asyncio.sleep(step)
        if time.monotonic() > stop:
            return
        await fault()


async def caller(i, rng, stop, world: World, record: Record, account, binding, replicas) -> None:
    mine: list[spb.Settlement] = []
    while time.monotonic() < stop:
        settlement = rng.choice(replicas)
        dice = rng.random()
        try:
            if dice < 0.55:
                await settle(rng, world, record, settlement, mine)
            elif dice < 0.75 and mine:
                await cancel(rng, record, settlement, mine)
            elif dice < 0.85:
                await reverse(rng, record, settlement)
            elif dice < 0.92:
                await premium(rng, world, record, settlement)
            elif dice < 0.97:
                await suspend(rng, world, record, account)
            else:
                await unbind(rng, world, record, binding)
        except grpc.aio.AioRpcError as e:
            record.outcomes[f"refused {reason_of(e) or e.code().name}"] += 1
        await asyncio.sleep(0)


def deadline(rng) -> float:
    """Mostly patient callers; one in ten gives up after a few milliseconds."""
    return rng.uniform(0.002, 0.03) if rng.random() < 0.1 else 5.0


async def settle(rng, world: World, record: Record, settlement, mine: list) -> None:
    request = bill(rng.choice(world.patients), rng.randrange(1, 6_000))
    record.sent[request.medins_setl_id] = request
    s = await settlement.Settle(request, timeout=deadline(rng))
    record.acknowledged[s.settlement_id] = s
    record.outcomes["settled"] += 1
    mine.append(s)


async def cancel(rng, record: Record, settlement, mine: list) -> None:
    s = mine.pop(rng.randrange(len(mine)))
    request = record.cancels.setdefault(
        s.settlement_id, spb.CancelSettlementRequest(settlement_id=s.settlement_id,
                                                     reason="chaos", request_id=rid())
    )  # fmt: skip
    await settlement.CancelSettlement(request, timeout=deadline(rng))
    record.outcomes["cancelled"] += 1


async def reverse(rng, record: Record, settlement) -> None:
    if record.sent and rng.random() < 0.7:
        key = rng.choice(list(record.sent))
    else:  # a key that never arrived, and arrives after its reversal
        late = bill(rng.choice(list(record.sent.values())).patient_id if record.sent
                    else "430102198005170012", 100)  # fmt: skip
        key = late.medins_setl_id
        record.sent[key] = late
    request = spb.ReverseSettlementRequest(institution_id=HOSPITAL, medins_setl_id=key,
                                           request_id=rid())  # fmt: skip
    await settlement.ReverseSettlement(request, timeout=deadline(rng))
    record.outcomes["reversed"] += 1


async def premium(rng, world: World, record: Record, settlement) -> None:
    kid = rng.choice(list(world.residents))
    year = dt.date.today().year + rng.randrange(2)
    known = [p for p in record.premiums if (p.beneficiary_id, p.year) == (kid, year)]
    request = known[0] if known else spb.PayResidentPremiumRequest(
        payer_id=world.residents[kid], beneficiary_id=kid, year=year, amount_fen=PREMIUM,
        request_id=rid(),
    )  # fmt: skip
    if not known:
        record.premiums.append(request)
    await settlement.PayResidentPremium(request, timeout=deadline(rng))
    record.outcomes["premium paid"] += 1


async def suspend(rng, world: World, record: Record, account) -> None:
    pid = rng.choice(world.people)
    if record.suspending[pid].locked():
        return
    async with record.suspending[pid]:
        await suspended_for_a_while(rng, pid, record, account)


async def suspended_for_a_while(rng, pid: str, record: Record, account) -> None:
    await account.SuspendAccount(pb.SuspendAccountRequest(person_id=pid, reason="chaos",
                                                          request_id=rid()), timeout=5)  # fmt: skip
    acknowledged = now_ms()
    record.outcomes["suspended"] += 1
    await asyncio.sleep(rng.uniform(0.1, 0.5))
    resume_sent = now_ms()
    record.suspended[pid].append((acknowledged, resume_sent))
    resume = pb.ResumeAccountRequest(person_id=pid, request_id=rid())
    for _ in range(100):  # resumed before the end, whatever is down meanwhile
        with contextlib.suppress(grpc.aio.AioRpcError):
            await account.ResumeAccount(resume, timeout=5)
            return
        await asyncio.sleep(0.2)


async def unbind(rng, world: World, record: Record, binding) -> None:
    if len(world.bindings) < 10:
        return
    b = world.bindings.pop(rng.randrange(len(world.bindings)))
    await binding.RemoveBinding(bpb.RemoveBindingRequest(binding_id=b.binding_id,
                                                         request_id=rid()), timeout=5)  # fmt: skip
    record.unbound[(b.binder_id, b.beneficiary_id)] = now_ms()
    record.outcomes["unbound"] += 1


async def finish(record: Record, settlement) -> None:
    """Once the faults are over: every premium request is answered for good when retried."""
    await asyncio.sleep(RECOVERY_MS / 1000 * 3)
    for request in record.premiums:
        for _ in range(100):
            try:
                await settlement.PayResidentPremium(request, timeout=5)
                break
            except grpc.aio.AioRpcError as e:
                if reason_of(e) not in ("SETTLEMENT_IN_PROGRESS", "REQUEST_IN_PROGRESS", ""):
                    break
            await asyncio.sleep(0.1)


async def final_states(record: Record, settlement) -> dict[str, spb.Settlement | None]:
    states: dict[str, spb.Settlement | None] = {}
    for key in record.sent:
        get_ = spb.GetSettlementRequest(institution_id=HOSPITAL, medins_setl_id=key)
        try:
            states[key] = await settlement.GetSettlement(get_, timeout=5)
        except grpc.aio.AioRpcError as e:
            assert e.code() == grpc.StatusCode.NOT_FOUND, e
            states[key] = None
    return states


async def check(world: World, record: Record, account, settlement) -> None:
    for _ in range(10):
        states = await final_states(record, settlement)
        in_flight = {k: s.status for k, s in states.items() if s and s.status not in (3, 4, 5)}
        if not in_flight:
            break
        await asyncio.sleep(RECOVERY_MS / 1000)
    assert not in_flight, f"keys still in flight after the faults: {in_flight}"
    by_id = {s.settlement_id: s for s in states.values() if s}
    for sid, acked in record.acknowledged.items():  # acknowledged settlements are there
        assert sid in by_id and by_id[sid].status in (3, 4), sid
        assert list(by_id[sid].legs) == list(acked.legs), sid
    payers = [*world.people, *world.residents.values()]
    ledgers = {p: await all_entries(account, p) for p in payers}
    for p in payers:  # invariants 1 and 3
        a = await get(account, p)
        assert a.held_fen == 0, p
        assert a.balance_fen == sum(e.amount_fen for e in ledgers[p]), p
        assert all(e.balance_after_fen >= 0 for e in ledgers[p]), p
    check_legs(by_id, ledgers)
    check_premiums(world, record, ledgers)
    # balance = credits - legs of settled settlements - premiums (invariants 1 and 2 together)
    for p in payers:
        legs = sum(leg.amount_fen for s in by_id.values() if s.status == 3
                   for leg in s.legs if leg.payer_id == p)  # fmt: skip
        premiums = -sum(e.amount_fen for e in ledgers[p] if e.kind == pb.ENTRY_KIND_PREMIUM)
        assert (await get(account, p)).balance_fen == world.credits[p] - legs - premiums, p
    check_after_acknowledgement(world, record, by_id, ledgers)


def check_legs(by_id: dict[str, spb.Settlement], ledgers: dict[str, list]) -> None:
    """Every settlement debit is a leg of a settlement that stands, once; every leg of a
    cancelled one was refunded once (invariant 2)."""
    debits = collections.Counter()
    refunds = collections.Counter()
    for entries in ledgers.values():
        for e in entries:
            if e.kind == pb.ENTRY_KIND_SETTLEMENT:
                assert e.reference in by_id, f"a debit of no settlement: {e.reference}"
                debits[(e.person_id, e.reference, -e.amount_fen)] += 1
            elif e.kind == pb.ENTRY_KIND_REFUND:
                refunds[(e.person_id, e.reference.removeprefix("cancel "), e.amount_fen)] += 1
    for sid, s in by_id.items():
        for leg in s.legs:
            key = (leg.payer_id, sid, leg.amount_fen)
            assert debits.pop(key, 0) == 1, key
            assert refunds.pop(key, 0) == (1 if s.status == 4 else 0), key
    assert not debits and not refunds, (debits, refunds)


def _ms(t) -> int:
    return int(t.seconds * 1000 + t.nanos // 1_000_000)


def check_premiums(world: World, record: Record, ledgers: dict[str, list]) -> None:
    """One premium per beneficiary and year, and each request answered with it (A2)."""
    for kid, payer in world.residents.items():
        years = {p.year for p in record.premiums if p.beneficiary_id == kid}
        paid = [e for e in ledgers[payer] if e.kind == pb.ENTRY_KIND_PREMIUM]
        assert len(paid) == len(years), (kid, years, paid)
        assert all(e.amount_fen == -PREMIUM for e in paid)


def check_after_acknowledgement(world, record: Record, by_id, ledgers) -> None:
    """No debit of an account after its suspension (until its resumption was asked) or after
    its unbinding from the patient was acknowledged (S4), and no settlement decided for a
    patient while he was suspended (S5). A settlement is decided when its patient is checked:
    on one Redis that is the moment of its debits; under a Redis Cluster its debits follow,
    each checking its own payer at its own moment (services/account/stepwise.py)."""
    for entries in ledgers.values():
        for e in entries:
            if e.kind != pb.ENTRY_KIND_SETTLEMENT:
                continue
            at = _ms(e.created_at)
            settlement = by_id[e.reference]
            patient, decided = settlement.patient_id, _ms(settlement.settled_at)
            for who, when in ((e.person_id, at), (patient, decided)):
                for acknowledged, resumed in record.suspended.get(who, []):
                    assert not acknowledged < when < resumed, ("paid while suspended", who, e)
            unbound = record.unbound.get((e.person_id, patient))
            assert unbound is None or at <= unbound, ("paid after unbinding", e)
