"""`gongji audit` over the three-master Redis Cluster: every master scanned, each account read
in one MULTI on its own slot, a payment still being made in steps taken as in flight, and a
broken balance found. Runs before the other tests of this folder, on the data it makes."""

from __future__ import annotations

import datetime as dt

import orjson

from gongji.settlement.v1 import settlement_pb2 as spb
from services.account.store import account_key, payment_key
from services.audit import audit, render
from services.common import policy as policies
from services.common.ids import mask
from services.common.redisdb import EmbeddedCluster, connect
from tests import support
from tests.integration.accounts import rid
from tests.integration.bindings import CHILD, create, person
from tests.integration.test_settlement import bill


async def test_the_audit_reads_the_cluster_and_finds_a_broken_balance(
    cluster: EmbeddedCluster, account, binding, settlement
) -> None:  # invariants 1, 2 (docs/ARCHITECTURE.md), under Redis Cluster
    dad, mum = await person(account, 1960, 50_000), await person(account, 1962, 20_000)
    child, kid = await person(account, 1990, 1_000), await person(account, 2010, 0, resident=True)
    for parent, relative in ((dad, child), (mum, child), (dad, kid)):
        await binding.CreateBinding(create(parent, relative, CHILD), timeout=10)
    family = (await settlement.Settle(bill(child, 9_000), timeout=10)).settlement_id
    cancelled = (await settlement.Settle(bill(child, 700), timeout=10)).settlement_id
    await settlement.CancelSettlement(spb.CancelSettlementRequest(
        settlement_id=cancelled, reason="x", request_id=rid()), timeout=10)  # fmt: skip
    await settlement.PayResidentPremium(spb.PayResidentPremiumRequest(
        payer_id=dad, beneficiary_id=kid, year=dt.date.today().year, amount_fen=38_000,
        request_id=rid()), timeout=10)  # fmt: skip
    policy = policies.load(support.POLICY_FILE)

    report = await audit(cluster.url, policy=policy, redis_mode="cluster")
    assert report.ok, render(report)
    assert report.counts["accounts"] >= 4 and report.counts["payments"] >= 3
    assert report.counts["persons with bindings"] >= 4

    redis = connect(cluster.url, mode="cluster")
    try:
        record = await redis.get(payment_key(family))  # as if its last step were still due
        journal = orjson.loads(record) | {"phase": "paying"}
        await redis.set(payment_key(family), orjson.dumps(journal))
        in_flight = await audit(cluster.url, policy=policy, redis_mode="cluster")
        assert in_flight.ok, render(in_flight)
        await redis.set(payment_key(family), orjson.dumps(journal | {"at_ms": "1"}))
        stuck = await audit(cluster.url, policy=policy, redis_mode="cluster")  # invariant 3
        assert {(v.rule, v.subject) for v in stuck.violations} == {("payment.in-flight", family)}, (
            render(stuck)
        )
        await redis.set(payment_key(family), record)

        await redis.hincrby(account_key(mum), "balance", 1)
        broken = await audit(cluster.url, policy=policy, redis_mode="cluster")
        assert {(v.rule, v.subject) for v in broken.violations} == {
            ("account.ledger-sum", mask(mum))
        }, render(broken)
        await redis.hincrby(account_key(mum), "balance", -1)
        assert orjson.loads(record)["state"]  # the record put back was a real one
    finally:
        await redis.aclose()
