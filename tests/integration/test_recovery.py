"""Recovery (DESIGN "Recovery"): journals whose owner died are finished by the sweepers, by what
the account service says of their payment; two sweepers are harmless, a late owner cannot pay
any more, and entries that keep failing do not starve the others."""

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest

from gongji.account.v1 import account_pb2 as apb
from gongji.settlement.v1 import settlement_pb2 as spb
from services.account.client import AccountClient
from services.common.clock import SystemClock, beijing_today
from services.common.enums import EntryKind, SettlementStatus
from services.common.rpc import reason_of
from services.settlement.coordinator import Coordinator, now_ms
from services.settlement.journal import Bill, Journal
from services.settlement.recovery import Sweeper
from services.settlement.store import SettlementStore
from tests.integration.accounts import get, rid
from tests.integration.test_settlement import bill, family


@pytest.fixture
async def coordinator(redis, account_addr) -> AsyncIterator[Coordinator]:
    async with grpc.aio.insecure_channel(account_addr) as a:
        yield Coordinator(SettlementStore(redis), AccountClient(a), 30_000)


async def orphan(coordinator: Coordinator, patient: str, burden: int) -> Journal:
    """A settlement whose owner wrote its PENDING journal and died; already due for recovery."""
    r = bill(patient, burden)
    b = Bill(r.institution_id, r.medins_setl_id, patient, r.credential_type, "",
             burden, 0, burden, True, True, beijing_today(SystemClock()).isoformat())  # fmt: skip
    now = now_ms()
    journal = Journal(b.settlement_id, SettlementStatus.PENDING, b.fingerprint(), now, now - 1,
                      bill=b)  # fmt: skip
    assert await coordinator.store.begin(journal) is None
    return journal


async def pay(coordinator: Coordinator, journal: Journal, sources: list[apb.PaySource]):
    assert journal.bill
    return await coordinator.accounts.pay(
        journal.payment_id, EntryKind.SETTLEMENT, journal.patient_id, sources,
        journal.bill.personal_burden_fen, journal.bill.service_date, now_ms() + 60_000, 5,
    )  # fmt: skip


async def test_two_sweepers_settle_a_paid_orphan_once(account, binding, coordinator):
    child, dad, _ = await family(account, binding, own=1_000)
    journal = await orphan(coordinator, child, 3_000)
    await pay(coordinator, journal, [apb.PaySource(person_id=child)])  # then the owner died
    await asyncio.gather(Sweeper(coordinator).sweep(), Sweeper(coordinator).sweep(),
                         coordinator.resolve(journal))  # fmt: skip
    done = await coordinator.store.load(journal.payment_id)
    assert isinstance(done, Journal) and done.status == SettlementStatus.SETTLED
    assert [(leg.payer_id, leg.amount_fen) for leg in done.legs] == [(child, 1_000)]
    assert (await get(account, child)).balance_fen == 0
    assert (await get(account, dad)).balance_fen == 20_000


async def test_an_orphan_never_paid_is_aborted_and_its_late_payment_refused(
    account, binding, coordinator
):
    child, _, _ = await family(account, binding, own=1_000)
    journal = await orphan(coordinator, child, 500)
    await asyncio.gather(Sweeper(coordinator).sweep(), Sweeper(coordinator).sweep())
    done = await coordinator.store.load(journal.payment_id)
    assert isinstance(done, Journal) and done.status == SettlementStatus.ABORTED
    with pytest.raises(grpc.aio.AioRpcError) as late:  # the owner wakes up and pays
        await pay(coordinator, journal, [apb.PaySource(person_id=child)])
    assert reason_of(late.value) == "SETTLEMENT_ABORTED"
    assert (await get(account, child)).balance_fen == 1_000


async def test_entries_that_keep_failing_do_not_starve_the_others(
    account, binding, coordinator
):  # a resolution that fails is put back by its lease, and the pass goes on
    child, _, _ = await family(account, binding, own=1_000)
    # More than one pass takes, each failing: the account service refuses their patient id.
    broken = [await orphan(coordinator, "not-a-person-id", 1) for _ in range(120)]
    good = await orphan(coordinator, child, 400)
    await pay(coordinator, good, [apb.PaySource(person_id=child)])
    sweeper = Sweeper(coordinator)
    for _ in range(3):
        await sweeper.sweep()
    done = await coordinator.store.load(good.payment_id)
    assert isinstance(done, Journal) and done.status == SettlementStatus.SETTLED
    queued = set(await coordinator.store.redis.zrange("setl:recovery", 0, -1))
    assert good.payment_id not in queued
    assert {b.payment_id for b in broken} <= queued  # still there, to be tried again
    await coordinator.store.redis.zrem("setl:recovery", *[b.payment_id for b in broken])


async def test_a_cancel_cut_off_after_it_was_journaled_is_finished(
    account, binding, settlement, coordinator
):  # rule S9: the refunds follow the CANCELLING journal, not the caller
    child, dad, _ = await family(account, binding, own=0)
    s = await settlement.Settle(bill(child, 2_000), timeout=10)
    journal = await coordinator.store.load(s.settlement_id)
    assert isinstance(journal, Journal)
    cancelling = journal.moved(SettlementStatus.CANCELLING, cancelled_ms=now_ms(),
                               cancel_reason="x", cancel_request_id=rid())  # fmt: skip
    assert await coordinator.store.move(journal, cancelling, due_ms=now_ms() - 1)
    await Sweeper(coordinator).sweep()
    got = await settlement.GetSettlement(spb.GetSettlementRequest(settlement_id=s.settlement_id))
    assert got.status == spb.SETTLEMENT_STATUS_CANCELLED
    assert (await get(account, dad)).balance_fen == 20_000
