"""One way per idea in the money core: a payment's share is refunded only by cancelling the
payment (the RefundEntries RPC is retired), and a premium is the same payment whatever day it
is paid on (rules S9, A2)."""

from __future__ import annotations

import datetime as dt

import grpc

from gongji.account.v1 import account_pb2 as pb
from gongji.settlement.v1 import settlement_pb2 as spb
from tests import support
from tests.integration.accounts import get, rid
from tests.integration.bindings import CHILD, create, person
from tests.integration.test_settlement import bill

RETIRED = "/gongji.account.v1.AccountService/RefundEntries"


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field (the form of the retired messages, hand-written: they
    are no longer in the protos)."""
    assert len(payload) < 128 and number < 16
    return bytes([number << 3 | 2, len(payload)]) + payload


def _refund_entries(entry_id: str, person_id: str) -> bytes:
    """RefundEntriesRequest{refunds: [{entry_id, person_id, refund_id}], reference, request_id}."""
    spec = _field(1, entry_id.encode()) + _field(2, person_id.encode()) + _field(3, b"rf-1")
    return _field(1, spec) + _field(2, b"cancel") + _field(3, rid().encode())


async def test_a_share_is_refunded_once_however_the_caller_tries(
    account, binding, settlement, account_addr
):  # rule S9: RefundEntries then CancelSettlement refunded the same 700 fen twice
    dad = await person(account, 1960, 10_000)
    child = await person(account, 1990, 0)
    await binding.CreateBinding(create(dad, child, CHILD), timeout=10)
    settled = await settlement.Settle(bill(child, 700), timeout=10)
    [leg] = settled.legs
    assert (leg.payer_id, leg.amount_fen) == (dad, 700)
    async with support.channel(account_addr) as channel:
        call = channel.unary_unary(RETIRED, request_serializer=bytes,
                                   response_deserializer=bytes)  # fmt: skip
        code, _ = await support.refused(call(_refund_entries(leg.entry_id, dad), timeout=5))
    assert code == grpc.StatusCode.UNIMPLEMENTED
    cancel = spb.CancelSettlementRequest(settlement_id=settled.settlement_id, reason="x",
                                         request_id=rid())  # fmt: skip
    await settlement.CancelSettlement(cancel, timeout=10)
    await settlement.CancelSettlement(cancel, timeout=10)  # a retry answers the same
    assert (await get(account, dad)).balance_fen == 10_000


async def test_a_premium_paid_again_the_next_day_is_the_same_payment(account, binding):
    # rule A2: a PayResidentPremium whose answer was lost, retried after Beijing midnight, met
    # its own payment as IDEMPOTENCY_CONFLICT (the day was part of what it was compared by)
    dad = await person(account, 1960, 100_000)
    kid = await person(account, 2012, 0, resident=True)
    made = await binding.CreateBinding(create(dad, kid, CHILD), timeout=10)
    today = dt.date.fromisoformat(made.start_date)

    def premium(day: dt.date) -> pb.PayFromAccountsRequest:
        return pb.PayFromAccountsRequest(
            payment_id=f"P{kid}", kind=pb.ENTRY_KIND_PREMIUM, patient_id=kid,
            sources=[pb.PaySource(person_id=dad)], amount_fen=40_000, on_date=day.isoformat(),
            premium_year=today.year,
        )  # fmt: skip

    first = await account.PayFromAccounts(premium(today), timeout=10)
    again = await account.PayFromAccounts(premium(today + dt.timedelta(days=1)), timeout=10)
    assert again == first
    assert (await get(account, dad)).balance_fen == 60_000
