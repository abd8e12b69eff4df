"""Recovery: two sweepers (two replicas) racing on one orphaned settlement are harmless, and an
owner and a sweeper can never both decide (DESIGN "Recovery")."""

import asyncio

import grpc

from gongji.account.v1 import account_pb2 as pb
from services.account.client import AccountClient
from services.binding.client import BindingClient
from services.common.locks import Locks
from services.settlement import store as st
from services.settlement.coordinator import Coordinator, settlement_id
from services.settlement.recovery import Sweeper
from tests.integration.accounts import get, hold, open_account, rid


async def orphan(account, coordinator: Coordinator, status: int) -> tuple[dict, list[str]]:
    """A settlement whose owner died after placing its holds, journal at `status`."""
    payers = [await open_account(account, 1_000), await open_account(account, 1_000)]
    sid = settlement_id("H43010500001", rid()[:20])
    legs = []
    for i, pid in enumerate(payers):
        h = await hold(account, pid, 400, hold_id=f"{sid}:{i}")
        legs.append({"payer_id": pid, "kind": 2, "amount": 400, "hold_id": h.hold_id,
                     "fence": 1, "entry_id": "", "balance_after": 0})  # fmt: skip
    journal = {"settlement_id": sid, "status": status, "legs": legs, "patient_id": payers[0],
               "settled_ms": 0}  # fmt: skip
    await coordinator.store.save(journal)
    await coordinator.store.recover_later(sid, 0)
    return journal, payers


async def coordinator_for(redis, account_addr: str) -> Coordinator:
    channel = grpc.aio.insecure_channel(account_addr)
    store, locks = st.SettlementStore(redis), Locks(redis, 2_000)
    return Coordinator(
        store, AccountClient(channel), BindingClient(channel), locks, 30_000, frozenset()
    )


async def test_two_sweepers_settle_a_committing_orphan_once(account, redis, account_addr):
    coordinator = await coordinator_for(redis, account_addr)
    journal, payers = await orphan(account, coordinator, st.COMMITTING)
    await asyncio.gather(Sweeper(coordinator).sweep(), Sweeper(coordinator).sweep(),
                         coordinator.finish(dict(journal)))  # fmt: skip
    done = await coordinator.store.load(journal["settlement_id"])
    assert done["status"] == st.SETTLED
    for pid in payers:
        a = await get(account, pid)
        assert (a.balance_fen, a.held_fen) == (600, 0)


async def test_a_pending_orphan_is_aborted_and_its_holds_voided(account, redis, account_addr):
    coordinator = await coordinator_for(redis, account_addr)
    journal, payers = await orphan(account, coordinator, st.PENDING)
    await asyncio.gather(Sweeper(coordinator).sweep(), Sweeper(coordinator).sweep())
    assert (await coordinator.store.load(journal["settlement_id"]))["status"] == st.ABORTED
    for pid in payers:
        assert (await get(account, pid)).available_fen == 1_000
    # the late owner cannot decide any more
    journal["status"] = st.COMMITTING
    assert not await coordinator.store.transition(journal, st.PENDING)
    refs = [
        pb.HoldRef(hold_id=leg["hold_id"], person_id=leg["payer_id"]) for leg in journal["legs"]
    ]
    voided = await account.VoidHolds(pb.VoidHoldsRequest(holds=refs, request_id=rid()))
    assert {h.state for h in voided.holds} == {pb.HOLD_STATE_VOIDED}
