"""PlaceHolds / CommitHolds / VoidHolds / RefundEntries: the only ways settlement money moves."""

import asyncio

import grpc
import pytest
from prometheus_client import REGISTRY

from gongji.account.v1 import account_pb2 as pb
from gongji.account.v1 import account_pb2_grpc
from services.account.server import build
from tests.integration.accounts import (
    all_entries,
    credit,
    get,
    hold,
    open_account,
    rid,
    withdraw,
)  # fmt: skip
from tests.support import refused, serving, settings


def ref(h: pb.Hold) -> pb.HoldRef:
    return pb.HoldRef(hold_id=h.hold_id, person_id=h.person_id)


async def commit(stub, *holds: pb.Hold) -> pb.CommitHoldsResponse:
    return await stub.CommitHolds(
        pb.CommitHoldsRequest(holds=[ref(h) for h in holds], request_id=rid())
    )


async def void(stub, *holds: pb.Hold) -> pb.VoidHoldsResponse:
    return await stub.VoidHolds(
        pb.VoidHoldsRequest(holds=[ref(h) for h in holds], request_id=rid())
    )


async def test_a_hold_reserves_and_its_commit_debits(account):
    pid = await open_account(account, 10_000)
    h = await hold(account, pid, 2_500)
    assert h.state == pb.HOLD_STATE_PLACED and h.expires_at.seconds > 0
    a = await get(account, pid)
    assert (a.balance_fen, a.held_fen, a.available_fen) == (10_000, 2_500, 7_500)
    entry = (await commit(account, h)).entries[0]
    assert (entry.kind, entry.amount_fen, entry.balance_after_fen, entry.reference) == (
        pb.ENTRY_KIND_SETTLEMENT, -2_500, 7_500, "S-test",
    )  # fmt: skip
    assert (await commit(account, h)).entries[0] == entry  # idempotent per hold
    a = await get(account, pid)
    assert (a.balance_fen, a.held_fen) == (7_500, 0)


async def test_a_voided_hold_frees_its_amount_and_stays_voided(account):
    pid = await open_account(account, 1_000)
    h = await hold(account, pid, 1_000)
    voided = (await void(account, h)).holds[0]
    assert voided.state == pb.HOLD_STATE_VOIDED
    assert (await void(account, h)).holds[0].state == pb.HOLD_STATE_VOIDED
    assert (await get(account, pid)).available_fen == 1_000
    assert await refused(commit(account, h)) == (
        grpc.StatusCode.FAILED_PRECONDITION, "HOLD_NOT_PLACED",
    )  # fmt: skip


async def test_a_committed_hold_cannot_be_voided(account):
    pid = await open_account(account, 1_000)
    h = await hold(account, pid, 10)
    await commit(account, h)
    assert (await refused(void(account, h)))[1] == "HOLD_NOT_PLACED"


async def test_voiding_an_unknown_hold_blocks_its_late_placement(account):
    """A recovering coordinator voids holds whose placement it never saw answered."""
    pid = await open_account(account, 1_000)
    ghost = pb.Hold(hold_id=rid(), person_id=pid)
    assert (await void(account, ghost)).holds[0].state == pb.HOLD_STATE_VOIDED
    _, reason = await refused(hold(account, pid, 100, hold_id=ghost.hold_id))
    assert reason == "HOLD_NOT_PLACED"
    assert (await get(account, pid)).held_fen == 0


async def test_holds_beyond_the_available_balance_are_refused(account):  # rule S11
    pid = await open_account(account, 1_000)
    await hold(account, pid, 600)
    assert await refused(hold(account, pid, 401)) == (
        grpc.StatusCode.FAILED_PRECONDITION, "INSUFFICIENT_FUNDS",
    )  # fmt: skip
    await hold(account, pid, 400)
    assert (await get(account, pid)).available_fen == 0


async def test_place_holds_is_all_or_none_and_may_be_retried(account):
    rich, poor = await open_account(account, 5_000), await open_account(account, 100)
    request = pb.PlaceHoldsRequest(
        holds=[
            pb.HoldSpec(hold_id=rid(), person_id=rich, amount_fen=3_000, fencing_token=1),
            pb.HoldSpec(hold_id=rid(), person_id=poor, amount_fen=200, fencing_token=1),
        ],
        kind=pb.ENTRY_KIND_SETTLEMENT, reference="S-all-or-none", request_id=rid(),
    )  # fmt: skip
    assert (await refused(account.PlaceHolds(request)))[1] == "INSUFFICIENT_FUNDS"
    assert (await get(account, rich)).held_fen == 0
    await credit(account, poor, 100)
    placed = await account.PlaceHolds(request)
    assert [h.state for h in placed.holds] == [pb.HOLD_STATE_PLACED] * 2
    assert await account.PlaceHolds(request) == placed
    assert (await get(account, rich)).held_fen == 3_000


async def test_the_same_hold_id_with_other_content_is_a_conflict(account):
    pid = await open_account(account, 1_000)
    h = await hold(account, pid, 100)
    assert (await hold(account, pid, 100, hold_id=h.hold_id)).state == pb.HOLD_STATE_PLACED
    assert await refused(hold(account, pid, 101, hold_id=h.hold_id)) == (
        grpc.StatusCode.ALREADY_EXISTS, "IDEMPOTENCY_CONFLICT",
    )  # fmt: skip
    assert (await get(account, pid)).held_fen == 100


async def test_a_stale_fencing_token_is_refused(account):
    pid = await open_account(account, 1_000)
    await hold(account, pid, 100, fence=7)
    assert await refused(hold(account, pid, 100, fence=6)) == (
        grpc.StatusCode.FAILED_PRECONDITION, "STALE_FENCING_TOKEN",
    )  # fmt: skip
    await hold(account, pid, 100, fence=7)
    await hold(account, pid, 100, fence=9)
    assert (await refused(hold(account, pid, 100, fence=8)))[1] == "STALE_FENCING_TOKEN"
    assert (await get(account, pid)).held_fen == 300


async def test_suspended_and_closed_accounts_take_no_holds(account):  # rule A6, S5
    pid = await open_account(account, 1_000)
    await account.SuspendAccount(
        pb.SuspendAccountRequest(person_id=pid, reason="fraud", request_id=rid())
    )
    assert (await refused(hold(account, pid, 1)))[1] == "ACCOUNT_SUSPENDED"
    await account.ResumeAccount(pb.ResumeAccountRequest(person_id=pid, request_id=rid()))
    await withdraw(account, pid)
    assert (await refused(hold(account, pid, 1)))[1] == "ACCOUNT_CLOSED"


async def test_residents_and_unknown_persons_take_no_holds(account):
    resident = await open_account(account, resident=True)
    assert (await refused(hold(account, resident, 1)))[1] == "NO_PERSONAL_ACCOUNT"
    assert (await refused(hold(account, "430102198005170012", 1)))[1] == "ACCOUNT_NOT_FOUND"


async def test_committing_an_unknown_hold_is_refused(account):
    pid = await open_account(account, 10)
    _, reason = await refused(commit(account, pb.Hold(hold_id=rid(), person_id=pid)))
    assert reason == "HOLD_NOT_PLACED"


@pytest.fixture
async def short_holds(redis_url, redis):
    app = await build(settings(redis_url, hold_ttl_s=1))
    async with serving(app) as (channel, _):
        yield account_pb2_grpc.AccountServiceStub(channel)


async def test_holds_expire_by_themselves(short_holds):
    pid = await open_account(short_holds, 1_000)
    h = await hold(short_holds, pid, 700)
    assert (await get(short_holds, pid)).available_fen == 300
    await asyncio.sleep(1.2)
    a = await get(short_holds, pid)
    assert (a.held_fen, a.available_fen, a.balance_fen) == (0, 1_000, 1_000)
    before = REGISTRY.get_sample_value("gongji_holds_total", {"action": "found_expired"}) or 0
    assert (await void(short_holds, h)).holds[0].state == pb.HOLD_STATE_EXPIRED
    after = REGISTRY.get_sample_value("gongji_holds_total", {"action": "found_expired"})
    assert after == before + 1  # what /metrics shows an operator
    assert (await refused(commit(short_holds, h)))[1] == "HOLD_NOT_PLACED"


async def settled(stub, pid: str, amount: int) -> pb.LedgerEntry:
    return (await commit(stub, await hold(stub, pid, amount))).entries[0]


def refund_request(*specs: tuple[pb.LedgerEntry, str]) -> pb.RefundEntriesRequest:
    return pb.RefundEntriesRequest(
        refunds=[
            pb.RefundSpec(entry_id=e.entry_id, person_id=e.person_id, refund_id=refund_id)
            for e, refund_id in specs
        ],
        reference="cancel S-test", request_id=rid(),
    )  # fmt: skip


async def test_a_debit_is_refunded_once(account):  # rule S9
    pid = await open_account(account, 1_000)
    debit = await settled(account, pid, 300)
    refund_id = rid()
    r = (await account.RefundEntries(refund_request((debit, refund_id)))).entries[0]
    assert (r.kind, r.amount_fen, r.balance_after_fen) == (pb.ENTRY_KIND_REFUND, 300, 1_000)
    again = (await account.RefundEntries(refund_request((debit, refund_id)))).entries[0]
    assert again == r
    _, reason = await refused(account.RefundEntries(refund_request((debit, rid()))))
    assert reason == "ALREADY_CANCELLED"
    assert (await get(account, pid)).balance_fen == 1_000


async def test_refunds_of_unknown_or_credit_entries_are_refused(account):
    pid = await open_account(account)
    credit_entry = await credit(account, pid, 100)
    assert (await refused(account.RefundEntries(refund_request((credit_entry, rid())))))[1] == (
        "INVALID_ARGUMENT"
    )
    ghost = pb.LedgerEntry(entry_id="e-nope", person_id=pid)
    assert await refused(account.RefundEntries(refund_request((ghost, rid())))) == (
        grpc.StatusCode.NOT_FOUND, "ENTRY_NOT_FOUND",
    )  # fmt: skip


async def test_a_refund_to_a_closed_account_is_written_then_paid_on(account):  # rule S9
    pid = await open_account(account, 1_000)
    debit = await settled(account, pid, 400)
    await withdraw(account, pid, payee="heirs of Li")
    await account.RefundEntries(refund_request((debit, rid())))
    newest = await all_entries(account, pid)
    assert [(e.kind, e.amount_fen, e.balance_after_fen) for e in newest[:3]] == [
        (pb.ENTRY_KIND_WITHDRAWAL, -400, 0),
        (pb.ENTRY_KIND_REFUND, 400, 400),
        (pb.ENTRY_KIND_WITHDRAWAL, -600, 0),
    ]
    assert newest[0].reference == "heirs of Li"
    assert (await get(account, pid)).balance_fen == 0


async def _suspend_and_resume(stub, pid: str) -> None:
    await stub.SuspendAccount(pb.SuspendAccountRequest(person_id=pid, reason="x", request_id=rid()))
    await stub.ResumeAccount(pb.ResumeAccountRequest(person_id=pid, request_id=rid()))


async def _move(stub, pid: str) -> None:
    await stub.TransferAccount(
        pb.TransferAccountRequest(person_id=pid, to_region_code="430103", request_id=rid())
    )


async def _refused_placement(stub, pid: str) -> None:
    """PlaceHolds of two: the first placed, the second refused, so the first is taken back."""
    specs = [pb.HoldSpec(hold_id=rid(), person_id=pid, amount_fen=amount, fencing_token=5)
             for amount in (100, 10**9)]  # fmt: skip
    request = pb.PlaceHoldsRequest(holds=specs, kind=pb.ENTRY_KIND_SETTLEMENT,
                                   reference="S-test", request_id=rid())  # fmt: skip
    assert (await refused(stub.PlaceHolds(request)))[1] == "INSUFFICIENT_FUNDS"


@pytest.mark.parametrize("change", [_suspend_and_resume, _move, _refused_placement])
async def test_an_expired_hold_is_counted_out_once_whatever_writes_the_account(
    short_holds, change
):  # rules S11, A6, A5; DESIGN invariant 1
    """A hold past its lifetime is counted out of `held` on every read; a write must record its
    expiry with that count, or the next read counts it out again and the account could pay more
    than it has."""
    pid = await open_account(short_holds, 3_000)
    await hold(short_holds, pid, 1_000)
    await asyncio.sleep(1.2)  # past its lifetime, not yet written down as expired
    await change(short_holds, pid)
    a = await get(short_holds, pid)
    assert (a.balance_fen, a.held_fen, a.available_fen) == (3_000, 0, 3_000)
    h = await hold(short_holds, pid, 500, fence=9)
    assert (await get(short_holds, pid)).available_fen == 2_500
    code, reason = await refused(hold_call(short_holds, pid, 2_501))
    assert reason == "INSUFFICIENT_FUNDS", code
    await commit(short_holds, h)
    assert (await get(short_holds, pid)).balance_fen == 2_500


def hold_call(stub, pid: str, amount: int):
    return stub.PlaceHolds(pb.PlaceHoldsRequest(
        holds=[pb.HoldSpec(hold_id=rid(), person_id=pid, amount_fen=amount, fencing_token=9)],
        kind=pb.ENTRY_KIND_SETTLEMENT, reference="S-test", request_id=rid(),
    ))  # fmt: skip
