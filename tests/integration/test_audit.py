"""The audit (services.audit) over a world made through the real RPCs of the three services, on
a Redis of its own so that "the clean world passes" means the whole database: then each test
breaks one thing directly in Redis, as a bug or a lost write would, and the audit must name
exactly that rule for that subject, with person ids masked. After each test the world is put
back as it was (every key the test changed is restored from a dump)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import pathlib
import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis

from gongji.account.v1 import account_pb2 as pb
from gongji.binding.v1 import binding_pb2 as bpb
from gongji.binding.v1 import binding_pb2_grpc
from gongji.common.v1 import common_pb2
from gongji.settlement.v1 import settlement_pb2 as spb
from services.account.store import account_key, payment_key
from services.audit import RULES, Report, audit, render
from services.audit.scan import parts
from services.binding.server import build as build_binding
from services.binding.store import Keys
from services.common import policy as policies
from services.common.enums import PaymentState
from services.common.ids import mask
from services.common.redisdb import connect, free_port
from services.settlement.bill import Bill
from tests.integration.accounts import rid
from tests.integration.bindings import CHILD, SPOUSE, create, person
from tests.integration.own_stack import own_stack
from tests.support import serving, settings

HOSPITAL = "H43010500001"
LIMIT = 2  # the world's binding limit: dad is at it


@dataclasses.dataclass
class World:
    url: str
    redis: aioredis.Redis
    policy: policies.Policy
    account_addr: str
    binding: binding_pb2_grpc.BindingServiceStub
    dad: str = ""  # binds child and kid: at the limit
    mum: str = ""  # binds child
    child: str = ""  # payers: mum, then dad
    kid: str = ""  # resident; dad pays his premium
    stranger: str = ""  # bought two policies, cancelled one (its refund record)
    own_only: str = ""  # settlement from child's own account
    family: str = ""  # settlement from child's own account, mum's and dad's
    cancelled: str = ""  # settlement from dad's account, cancelled
    cash_only: str = ""  # settlement with no legs
    premium: str = ""  # kid's premium from dad's account
    funder: str = ""  # kid's grandmother in Xianyang
    quota: str = ""  # funder's aid quota for kid: one bill drew on it, one drew and was cancelled
    policy_file: str = ""  # what the services were started with (GONGJI_POLICY_FILE)

    @property
    def people(self) -> list[str]:
        return [self.dad, self.mum, self.child, self.kid, self.stranger, self.funder]


def _bill(patient: str, burden: int, **kw: Any) -> spb.SettleRequest:
    return spb.SettleRequest(
        institution_id=HOSPITAL, medins_setl_id="M" + uuid.uuid4().hex[:20], patient_id=patient,
        credential_type=spb.CREDENTIAL_TYPE_MEDICAL_CODE, credential_holder_id=patient,
        medfee_total_fen=burden, fund_pay_fen=0, personal_burden_fen=burden, **kw,
    )  # fmt: skip


def _policy_file(folder: pathlib.Path, limit: int) -> str:
    path = folder / f"policy-{limit}.toml"
    path.write_text(f"[default]\nmax_bindings = {limit}\n")
    return str(path)


@pytest.fixture(scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    """The three services over a Redis of their own, and a small but complete world."""
    folder = tmp_path_factory.mktemp("audit")
    policy_file = _policy_file(folder, LIMIT)
    async with own_stack(folder, policy_file) as own:
        w = World(own.url, connect(own.url), policies.load(policy_file), own.account_addr,
                  own.binding, policy_file=policy_file)  # fmt: skip
        await _populate(w, own.account, own.settlement)
        yield w
        await w.redis.aclose()


async def _populate(w: World, account: Any, settlement: Any) -> None:
    w.dad, w.mum = await person(account, 1960, 50_000), await person(account, 1962, 20_000)
    w.child = await person(account, 1990, 5_000)
    w.kid = await person(account, 2010, 0, resident=True)
    w.stranger = await person(account, 1975, 10_000)
    for binder, beneficiary in ((w.dad, w.child), (w.mum, w.child), (w.dad, w.kid)):
        await w.binding.CreateBinding(create(binder, beneficiary, CHILD), timeout=10)
    order = [w.mum, w.dad]
    request = bpb.SetPayerOrderRequest(beneficiary_id=w.child, binder_ids=order, request_id=rid())
    await w.binding.SetPayerOrder(request, timeout=10)

    async def settle(burden: int, **kw: Any) -> str:
        settled = await settlement.Settle(_bill(w.child, burden, **kw), timeout=10)
        return str(settled.settlement_id)

    w.own_only = await settle(1_000, use_family_aid=False)  # child 4,000 left
    w.family = await settle(30_000)  # child 4,000, mum 20,000, dad 6,000
    w.cancelled = await settle(2_000)  # dad 2,000, given back
    cancel = spb.CancelSettlementRequest(settlement_id=w.cancelled, reason="x", request_id=rid())
    await settlement.CancelSettlement(cancel, timeout=10)
    w.cash_only = await settle(800, use_family_aid=False)
    never = spb.ReverseSettlementRequest(
        institution_id=HOSPITAL, medins_setl_id="never-arrived", request_id=rid()
    )
    await settlement.ReverseSettlement(never, timeout=10)
    premium = spb.PayResidentPremiumRequest(
        payer_id=w.dad, beneficiary_id=w.kid, year=dt.date.today().year, amount_fen=38_000,
        request_id=rid(),
    )  # fmt: skip
    w.premium = (await settlement.PayResidentPremium(premium, timeout=10)).payment_id
    await _policies(w, account)
    await _quota(w, account, settlement)


async def _quota(w: World, account: Any, settlement: Any) -> None:
    """An aid quota (N1-N3): kid's grandmother sets 3,000 aside for him; his bills draw 1,000
    and 500, the second cancelled (back to the quota)."""
    w.funder = await person(account, 1950, 4_000, region="610402")
    grant = bpb.GrantQuotaRequest(funder_id=w.funder, relative_id=w.kid,
                                  relationship=common_pb2.RELATIONSHIP_GRANDCHILD,
                                  amount_fen=3_000, request_id=rid())  # fmt: skip
    w.quota = (await w.binding.GrantQuota(grant, timeout=10)).quota_id
    await settlement.Settle(_bill(w.kid, 1_000), timeout=10)
    drawn = await settlement.Settle(_bill(w.kid, 500), timeout=10)
    cancel = spb.CancelSettlementRequest(settlement_id=drawn.settlement_id, reason="x",
                                         request_id=rid())  # fmt: skip
    await settlement.CancelSettlement(cancel, timeout=10)


async def _policies(w: World, account: Any) -> None:
    """Commercial insurance (A3): two policies bought, one cancelled (its refund record)."""
    for policy_no in ("POL-A", "POL-B"):
        await account.PurchaseCommercialInsurance(pb.PurchaseCommercialInsuranceRequest(
            person_id=w.stranger, amount_fen=500, insurer_code="PICC-HN", policy_no=policy_no,
            request_id=rid()), timeout=10)  # fmt: skip
    await account.CancelCommercialInsurance(pb.CancelCommercialInsuranceRequest(
        person_id=w.stranger, policy_no="POL-A", request_id=rid()), timeout=10)  # fmt: skip


@pytest.fixture
async def db(world: World) -> AsyncIterator[aioredis.Redis]:
    """The world's Redis for a test to break; every key it changed is restored after it."""
    raw = aioredis.Redis.from_url(world.url)
    before = await _dump(raw)
    yield world.redis
    after = await _dump(raw)
    for key in after.keys() - before.keys():
        await raw.delete(key)
    for key, (value, ttl_ms) in before.items():
        if after.get(key, (None, 0))[0] != value:
            await raw.restore(key, max(ttl_ms, 0), value, replace=True)
    await raw.aclose()


async def _dump(raw: aioredis.Redis) -> dict[bytes, tuple[bytes, int]]:
    return {key: (await raw.dump(key), await raw.pttl(key)) async for key in raw.scan_iter()}


async def _content(raw: aioredis.Redis) -> dict[bytes, Any]:
    """Every key's value as its type's read gives it (a DUMP also shows how Redis lays the
    value out, which its own background rehashing changes)."""
    read = {
        b"string": raw.get, b"hash": raw.hgetall, b"set": raw.smembers, b"stream": raw.xrange,
        b"list": lambda k: raw.lrange(k, 0, -1),
        b"zset": lambda k: raw.zrange(k, 0, -1, withscores=True),
    }  # fmt: skip
    return {key: await read[await raw.type(key)](key) async for key in raw.scan_iter()}


def found(report: Report) -> set[tuple[str, str]]:
    return {(v.rule, v.subject) for v in report.violations}


def assert_masked(report: Report, world: World) -> None:
    """No person id of the world reaches the report; the violations name them masked."""
    text = render(report)
    assert not [pid for pid in world.people if pid in text]


async def _json(redis: aioredis.Redis, key: str) -> dict[str, Any]:
    return dict(orjson.loads(await redis.get(key)))


async def _json_field(redis: aioredis.Redis, key: str, field: str) -> dict[str, Any]:
    return dict(orjson.loads(await redis.hget(key, field)))


async def test_the_clean_world_passes(world: World) -> None:  # invariants 1, 2, 3, 4
    seen: dict[str, int] = {}
    report = await audit(world.url, progress=seen.__setitem__, policy=world.policy)
    assert report.ok, render(report)
    assert render(report).endswith("All invariants hold.")
    assert report.counts["accounts"] == 6 and report.counts["payments"] == 8  # with a tombstone
    assert report.counts["persons with bindings"] == 5 and report.counts["binding records"] == 3
    assert report.counts["request records"] > 0
    assert seen["accounts"] == 6 and seen["payments"] == 8


async def test_a_balance_off_by_one_fen(world: World, db: aioredis.Redis) -> None:  # invariant 1
    await db.hincrby(account_key(world.stranger), "balance", 1)
    report = await audit(world.url, policy=world.policy)
    assert found(report) == {("account.ledger-sum", mask(world.stranger))}
    assert "balance 9501 fen, its 4 entries sum to 9500 fen" in report.violations[0].detail
    assert_masked(report, world)


async def test_a_reservation_set_by_hand(world: World, db: aioredis.Redis) -> None:
    # invariant 1: the reservation is what remains of the ACTIVE quotas (N2)
    await db.hincrby(account_key(world.funder), "reserved", -1)
    report = await audit(world.url, policy=world.policy)
    assert found(report) == {("quota.reserved", mask(world.funder))}
    assert "reserved 1999 fen, its ACTIVE quotas have 2000 fen left" in render(report)
    assert_masked(report, world)


async def test_a_quota_used_that_its_legs_do_not_make(world: World, db: aioredis.Redis) -> None:
    # invariant 2: used = the quota's legs less the refunds back to it (N3)
    key = parts(world.funder)["funds"]
    kept = orjson.loads(await db.hget(key, world.quota))
    kept[2], kept[3] = str(int(kept[2]) + 200), str(int(kept[3]) + 200)  # still 2,000 left
    await db.hset(key, world.quota, orjson.dumps(kept))
    report = await audit(world.url, policy=world.policy)
    assert found(report) == {("quota.used", mask(world.funder))}
    assert "has used 1200 fen, its shares less refunds 1000 fen" in render(report)


async def test_a_ledger_entry_removed(world: World, db: aioredis.Redis) -> None:  # invariant 1
    """The first credit lost from the list: the balance no longer is the sum, and the entries
    after it are neither at their indexed places nor chained from it."""
    ledger = parts(world.stranger)["ledger"]
    await db.lrem(ledger, 1, str(await db.lindex(ledger, 0)))
    report = await audit(world.url, policy=world.policy)
    who = mask(world.stranger)
    assert found(report) == {("account.ledger-sum", who), ("ledger.sequence", who)}
    assert_masked(report, world)


async def test_a_payment_leg_without_its_debit_entry(
    world: World, db: aioredis.Redis
) -> None:  # invariant 2
    record = await _json(db, payment_key(world.cash_only))
    record["shares"] = [{"person_id": world.child, "own": True, "amount": "100",
                         "entry_id": f"{world.cash_only}-1", "balance_after": "0"}]  # fmt: skip
    await db.set(payment_key(world.cash_only), orjson.dumps(record))
    report = await audit(world.url, policy=world.policy)
    assert found(report) == {("payment.debit", world.cash_only)}
    assert f"leg of {mask(world.child)}" in report.violations[0].detail
    assert_masked(report, world)


async def test_a_debit_its_payment_does_not_list(
    world: World, db: aioredis.Redis
) -> None:  # invariant 2: no other entry refers to a payment
    record = await _json(db, payment_key(world.family))
    record["shares"] = [s for s in record["shares"] if s["person_id"] != world.dad]
    await db.set(payment_key(world.family), orjson.dumps(record))
    report = await audit(world.url, policy=world.policy)
    assert found(report) == {("payment.unlisted-debit", mask(world.dad))}
    assert world.family in report.violations[0].detail
    assert_masked(report, world)


async def test_a_cancelled_payment_missing_its_refunds(
    world: World, db: aioredis.Redis
) -> None:  # invariant 2
    record = await _json(db, payment_key(world.family))
    record |= {"state": str(int(PaymentState.CANCELLED)), "cancelled_ms": "1",
               "cancel_reason": "refunds lost", "cancel_request_id": "x"}  # fmt: skip
    await db.set(payment_key(world.family), orjson.dumps(record))
    report = await audit(world.url, policy=world.policy)
    assert found(report) == {("payment.refund", world.family)}
    detail = report.violations[0].detail
    assert all(f"leg of {mask(p)}" in detail for p in (world.child, world.mum, world.dad))
    assert_masked(report, world)


async def a_pair_of(db: aioredis.Redis, binder: str) -> tuple[str, str]:
    """One of his active bindings as binder: its `pair:` field in his views, and its id."""
    views = await db.hgetall(Keys.person("43", binder))
    return next((f, i) for f, i in sorted(views.items()) if f.startswith("pair:"))


async def test_a_binding_index_disagreeing_with_the_record(
    world: World, db: aioredis.Redis
) -> None:  # invariant 4
    pair, binding_id = await a_pair_of(db, world.mum)
    await db.hdel(Keys.person("43", world.mum), pair)
    report = await audit(world.url, policy=world.policy)
    assert found(report) == {("binding.index", mask(world.mum))}
    assert f"active binding {binding_id} is missing from his active set" in str(report.violations)
    assert_masked(report, world)


async def test_a_payer_order_at_the_account_service_that_disagrees(
    world: World, db: aioredis.Redis
) -> None:  # invariant 4
    order = orjson.loads(await db.hget(account_key(world.child), "payers") or "[]")
    await db.hset(account_key(world.child), "payers", orjson.dumps(order[::-1]))
    report = await audit(world.url, policy=world.policy)
    assert found(report) == {("order.account", mask(world.child))}
    expected = f"pays from [{mask(world.dad)}, {mask(world.mum)}]"
    assert expected in report.violations[0].detail
    assert_masked(report, world)


async def test_more_bindings_than_the_binder_limit(
    world: World, db: aioredis.Redis, tmp_path: pathlib.Path
) -> None:  # invariant 4
    """A binding service replica configured with a higher limit binds dad a third time: every
    view of that binding agrees, only the limit of the policy in force is broken."""
    loose = settings(world.url, "binding", account_addr=world.account_addr,
                     policy_file=_policy_file(tmp_path, LIMIT + 1))  # fmt: skip
    async with serving(await build_binding(loose)) as (channel, _):
        replica = binding_pb2_grpc.BindingServiceStub(channel)
        await replica.CreateBinding(create(world.dad, world.mum, SPOUSE), timeout=10)
    report = await audit(world.url, policy=world.policy)
    assert found(report) == {("binding.limit", mask(world.dad))}
    assert "3 active bindings in province 43, the limit is 2" in report.violations[0].detail
    assert_masked(report, world)


async def test_a_grant_left_active_after_its_binding_ended(
    world: World, db: aioredis.Redis
) -> None:  # invariant 4
    listed = await world.binding.ListBindings(bpb.ListBindingsRequest(binder_id=world.mum))
    binding_id = listed.bindings[0].binding_id
    grants = parts(world.mum)["grants"]
    granted = await db.hget(grants, binding_id)
    await world.binding.RemoveBinding(bpb.RemoveBindingRequest(binding_id=binding_id,
                                                               request_id=rid()))  # fmt: skip
    await db.hset(grants, binding_id, str(granted))  # as if the revoke never reached it
    report = await audit(world.url, policy=world.policy)
    assert found(report) == {("grant.orphan", mask(world.mum))}
    assert f"active grant for binding {binding_id}, which has ended" in str(report.violations)
    assert_masked(report, world)


async def test_a_request_stuck_in_progress_past_the_recovery_window(
    world: World, db: aioredis.Redis
) -> None:  # invariant 3
    """Claims as services.common.idempotency writes them: one whose process died two minutes
    ago (its idle time says so), one written without a lease, and one in flight now."""
    claim = orjson.dumps({"fp": "f" * 64, "token": "0123456789abcdef"})
    old, leaseless = f"setl:req:CancelSettlement:retry-{world.child}", "acct:req:Credit:r-1"
    fresh = "bind:req:CreateBinding:r-2"
    raw = aioredis.Redis.from_url(world.url)
    await raw.set(old, claim, px=60_000)
    dumped = await raw.dump(old)
    await raw.restore(old, 60_000, dumped, replace=True, idletime=120)
    await raw.set(leaseless, claim)
    await raw.set(fresh, claim, px=60_000)
    await raw.aclose()
    report = await audit(world.url, policy=world.policy, recovery_after_ms=30_000)
    assert found(report) == {("request.stuck", old.replace(world.child, mask(world.child))),
                             ("request.stuck", leaseless)}  # fmt: skip
    # idle since the restore: 120 s, and a second or two more on a loaded machine
    assert re.search(r"untouched for 12[0-9] s, past the recovery window of 30 s",
                     str(report.violations))  # fmt: skip
    assert_masked(report, world)


async def test_a_payment_still_being_made_in_steps_is_in_flight(
    world: World, db: aioredis.Redis
) -> None:  # invariants 2, 3 under Redis Cluster (stepwise.py): debits before the record
    record = await _json(db, payment_key(world.family))
    now_ms = int((await db.time())[0]) * 1000
    journal = record | {"phase": "paying", "at_ms": str(now_ms)}  # its plan, while made
    await db.set(payment_key(world.family), orjson.dumps(journal))
    assert (await audit(world.url, policy=world.policy)).ok
    await db.set(payment_key(world.family), orjson.dumps(journal | {"at_ms": str(now_ms - 60_000)}))
    report = await audit(world.url, policy=world.policy)  # not finished within the window
    assert found(report) == {("payment.in-flight", world.family)}
    await db.delete(payment_key(world.family))  # no record: its debits name nothing
    report = await audit(world.url, policy=world.policy)
    assert {rule for rule, _ in found(report)} == {"payment.unlisted-debit"}
    assert_masked(report, world)


async def test_a_cancel_in_steps_under_way_is_in_flight(
    world: World, db: aioredis.Redis
) -> None:  # invariant 2: a cancel in steps refunds leg by leg, then says CANCELLED
    record = await _json(db, payment_key(world.cancelled))
    record |= {"state": str(int(PaymentState.PAID)), "cancelled_ms": "0", "cancel_reason": "",
               "cancel_request_id": ""}  # fmt: skip
    cancelling = {"reason": "x", "request_id": "c", "attempt": "a"}
    await db.set(payment_key(world.cancelled), orjson.dumps(record | {"cancelling": cancelling}))
    assert (await audit(world.url, policy=world.policy)).ok
    await db.set(payment_key(world.cancelled), orjson.dumps(record))  # no cancel under way
    report = await audit(world.url, policy=world.policy)
    assert found(report) == {("payment.refund", world.cancelled)}
    assert "is refunded, but the payment stands" in report.violations[0].detail


async def test_a_refund_entry_without_its_record(world: World, db: aioredis.Redis) -> None:
    # invariant 2: each refund answers exactly one debit
    refunds = parts(world.stranger)["refunds"]
    debit_id = next(iter(await db.hkeys(refunds)))
    await db.hdel(refunds, debit_id)
    report = await audit(world.url, policy=world.policy)
    assert found(report) == {("ledger.refund", mask(world.stranger))}
    assert "answers 0 debits" in report.violations[0].detail
    assert_masked(report, world)


async def test_legs_paying_more_than_the_bill(world: World, db: aioredis.Redis) -> None:
    # invariant 2: the legs sum to what was paid from accounts, the rest in cash
    record = await _json(db, payment_key(world.own_only))
    bill = Bill.from_details(record["details"].encode())
    bill = dataclasses.replace(bill, medfee_total_fen=600, personal_burden_fen=600)
    record["details"] = bill.details().decode()
    await db.set(payment_key(world.own_only), orjson.dumps(record))
    report = await audit(world.url, policy=world.policy)
    assert found(report) == {("payment.bill", world.own_only)}
    assert "the legs pay 1000 fen of a personal burden of 600 fen" in report.violations[0].detail


async def test_a_settlement_missing_from_a_payer_s_records(
    world: World, db: aioredis.Redis
) -> None:  # invariant 2: the consumption records (S13)
    await db.zrem(parts(world.mum)["paid-by"], world.family)
    report = await audit(world.url, policy=world.policy)
    assert found(report) == {("payment.index", world.family)}
    assert f"not in the family-aid records of {mask(world.mum)}" in report.violations[0].detail
    assert_masked(report, world)


async def test_an_active_binding_without_its_grant(
    world: World, db: aioredis.Redis
) -> None:  # invariant 4
    grants = parts(world.dad)["grants"]
    binding_id = next(iter(await db.hkeys(grants)))
    beneficiary, start, end, _ = orjson.loads(await db.hget(grants, binding_id))  # compact
    await db.hset(grants, binding_id, orjson.dumps([beneficiary, start, end, 0]))
    report = await audit(world.url, policy=world.policy)
    assert found(report) == {("binding.grant", mask(world.dad))}
    assert f"active binding {binding_id} has no active grant" in report.violations[0].detail
    assert_masked(report, world)


async def test_a_binding_missing_from_its_binder_s_index(
    world: World, db: aioredis.Redis
) -> None:  # invariant 4: seen from the record and from the binder's views
    _, binding_id = await a_pair_of(db, world.mum)
    await db.hdel(Keys.person("43", world.mum), f"a:{binding_id}")
    report = await audit(world.url, policy=world.policy)
    assert found(report) == {("binding.index", binding_id), ("binding.index", mask(world.mum))}
    assert "missing from the binder's index" in str(report.violations)
    assert_masked(report, world)


async def test_a_payment_lock_left_past_its_lease_and_the_window(
    world: World, db: aioredis.Redis
) -> None:  # invariant 3: a payment's lock nobody finished or released (services.account.locks)
    now_ms = int((await db.time())[0]) * 1000
    await db.hset(account_key(world.dad), "lock", f"owner S-never {now_ms - 1_000}")
    assert (await audit(world.url, policy=world.policy)).ok  # its lease just ran out
    await db.hset(account_key(world.dad), "lock", f"owner S-never {now_ms - 60_000}")
    report = await audit(world.url, policy=world.policy)
    assert found(report) == {("lock.stuck", mask(world.dad))}
    await db.hset(account_key(world.dad), "lock", f"owner {world.family} {now_ms - 60_000}")
    assert (await audit(world.url, policy=world.policy)).ok  # its payment is finished: free
    await db.hset(account_key(world.dad), "lock", "garbage")
    report = await audit(world.url, policy=world.policy)
    assert found(report) == {("lock.stuck", mask(world.dad))}
    assert_masked(report, world)


async def test_a_report_groups_violations_by_rule(world: World, db: aioredis.Redis) -> None:
    # no invariant: how render() shows what the audit found
    for pid in (world.stranger, world.dad):
        await db.hincrby(account_key(pid), "balance", 1)
    report = await audit(world.url, policy=world.policy)
    text = render(report)
    assert not report.ok
    assert found(report) == {("account.ledger-sum", mask(world.stranger)),
                             ("account.ledger-sum", mask(world.dad))}  # fmt: skip
    assert "2 violations of 1 rule:" in text
    assert f"account.ledger-sum: {RULES['account.ledger-sum'][1]} (2 violations)" in text
    assert f"  {mask(world.dad)}: balance 6001 fen" in text
    assert_masked(report, world)


async def test_the_audit_only_reads(world: World) -> None:
    """Run as a Redis user that may not write: it still reads everything, and the database is
    the same before and after."""  # no invariant: the audit writes nothing
    raw = aioredis.Redis.from_url(world.url)
    await raw.acl_setuser(
        "auditor", enabled=True, passwords=["+audit"], keys=["*"],
        categories=["+@read", "+@connection", "+@transaction", "-@write", "-@dangerous"],
        commands=["+time", "+object|idletime"],
    )  # fmt: skip
    before = await _content(raw)
    host_port = world.url.removeprefix("redis://")
    report = await audit(f"redis://auditor:audit@{host_port}", policy=world.policy)
    after = await _content(raw)
    await raw.acl_deluser("auditor")
    await raw.aclose()
    assert report.ok, render(report)
    assert report.counts["accounts"] == 6
    assert before == after


def test_gongji_audit_exits_0_on_the_clean_world_and_1_with_the_report(world: World) -> None:
    """The command users run: the report on stdout, the exit code for scripts (invariant 1)."""
    import redis as sync_redis
    from typer.testing import CliRunner

    from services.cli.__main__ import app

    runner = CliRunner()
    env = {"GONGJI_REDIS_URL": world.url, "GONGJI_POLICY_FILE": world.policy_file}
    clean = runner.invoke(app, ["audit"], env=env)
    assert clean.exit_code == 0, clean.output
    assert clean.output.rstrip().endswith("All invariants hold.")
    plain = sync_redis.Redis.from_url(world.url)
    try:
        plain.hincrby(account_key(world.stranger), "balance", 1)
        broken = runner.invoke(app, ["audit"], env=env)
    finally:
        plain.hincrby(account_key(world.stranger), "balance", -1)
        plain.close()
    assert broken.exit_code == 1
    assert "account.ledger-sum" in broken.output and mask(world.stranger) in broken.output
    assert world.stranger not in broken.output


def test_gongji_audit_says_when_redis_does_not_answer() -> None:
    from typer.testing import CliRunner

    from services.cli.__main__ import app

    url = f"redis://127.0.0.1:{free_port()}/0"
    done = CliRunner().invoke(app, ["audit"], env={"GONGJI_REDIS_URL": url})
    assert done.exit_code == 2 and f"cannot read {url}" in done.output
