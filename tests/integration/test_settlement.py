"""Settlement rules S1-S13 and A2 through the real gRPC APIs of the three services."""

import asyncio
import datetime as dt
import uuid

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from gongji.account.v1 import account_pb2 as pb
from gongji.binding.v1 import binding_pb2 as bpb
from gongji.settlement.v1 import settlement_pb2 as spb
from services.account.domain import Source
from services.account.store import AccountStore
from tests.integration.accounts import get, rid
from tests.integration.bindings import CHILD, create, person
from tests.support import refused

HOSPITAL = "H43010500001"
SETTLED, CANCELLED = spb.SETTLEMENT_STATUS_SETTLED, spb.SETTLEMENT_STATUS_CANCELLED


def bill(patient: str, burden: int, fund: int = 0, **kw) -> spb.SettleRequest:
    fields = dict(
        institution_id=HOSPITAL, medins_setl_id="M" + uuid.uuid4().hex[:20], patient_id=patient,
        credential_type=spb.CREDENTIAL_TYPE_MEDICAL_CODE, credential_holder_id=patient,
        medfee_total_fen=fund + burden, fund_pay_fen=fund, personal_burden_fen=burden,
    )  # fmt: skip
    fields.update(kw)
    return spb.SettleRequest(**fields)


def legs(s: spb.Settlement) -> list[tuple[str, int, int]]:
    return [(leg.payer_id, leg.kind, leg.amount_fen) for leg in s.legs]


async def family(account, binding, own: int = 5_000, father: int = 20_000, mother: int = 20_000):
    """A child with his own account and two bound parents: father 1st payer, mother 2nd."""
    child = await person(account, 1990, own)
    dad, mum = await person(account, 1960, father), await person(account, 1962, mother)
    for parent in (dad, mum):
        await binding.CreateBinding(create(parent, child, CHILD))
    return child, dad, mum


async def test_the_changsha_family_pays_own_then_payers_in_order_then_cash(
    account, binding, settlement
):  # rules S2, S12
    child, dad, mum = await family(account, binding)
    s = await settlement.Settle(bill(child, 50_000, fund=80_000), timeout=10)
    assert s.status == SETTLED
    assert legs(s) == [(child, 1, 5_000), (dad, 2, 20_000), (mum, 2, 20_000)]
    assert (s.acct_pay_fen, s.acct_mulaid_pay_fen, s.cash_pay_fen) == (5_000, 40_000, 5_000)
    assert [(await get(account, p)).balance_fen for p in (child, dad, mum)] == [0, 0, 0]
    assert all(leg.entry_id and leg.balance_after_fen == 0 for leg in s.legs)


async def test_a_binding_across_provinces_pays_and_ends_on_both_sides(
    account, binding, settlement
):  # rules B5, B13 (a Guizhou profile lifts B5: tests/policy.toml), S2, B11
    child = await person(account, 1990, 0)  # insured in Hunan
    dad = await person(account, 1960, 20_000, region="520102")  # in Guizhou
    made = await binding.CreateBinding(create(dad, child, CHILD))
    assert (made.priority, made.binding_id[1:5]) == (1, "5243")  # both provinces' keys
    on_payers = await binding.GetPayers(bpb.GetPayersRequest(beneficiary_id=child))
    assert [(p.binder_id, p.priority) for p in on_payers.payers] == [(dad, 1)]
    for side in ({"binder_id": dad}, {"beneficiary_id": child}):
        found = await binding.ListBindings(bpb.ListBindingsRequest(**side))
        assert [b.binding_id for b in found.bindings] == [made.binding_id]
    s = await settlement.Settle(bill(child, 1_000), timeout=10)
    assert legs(s) == [(dad, 2, 1_000)]
    ended = await binding.RemoveBinding(
        bpb.RemoveBindingRequest(binding_id=made.binding_id, request_id=rid())
    )
    assert ended.status == bpb.BINDING_STATUS_REMOVED
    assert not (await binding.GetPayers(bpb.GetPayersRequest(beneficiary_id=child))).payers
    for side in ({"binder_id": dad}, {"beneficiary_id": child}):
        found = await binding.ListBindings(bpb.ListBindingsRequest(**side, include_inactive=True))
        assert [b.status for b in found.bindings] == [bpb.BINDING_STATUS_REMOVED]
    s2 = await settlement.Settle(bill(child, 1_000), timeout=10)
    assert legs(s2) == [] and s2.cash_pay_fen == 1_000


async def test_xianyang_the_second_payer_pays_when_the_first_is_spent(
    account, binding, settlement
):  # rules S2, S4, B10
    child, dad, mum = await family(account, binding, own=0, father=300, mother=10_000)
    s = await settlement.Settle(bill(child, 1_000), timeout=10)
    assert legs(s) == [(dad, 2, 300), (mum, 2, 700)]
    s2 = await settlement.Settle(bill(child, 1_000), timeout=10)
    assert legs(s2) == [(mum, 2, 1_000)]


async def test_s1_the_credential_must_be_the_patient_s_own(account, binding, settlement):
    child, dad, _ = await family(account, binding)
    assert await refused(settlement.Settle(bill(child, 100, credential_holder_id=dad))) == (
        grpc.StatusCode.PERMISSION_DENIED, "CREDENTIAL_MISMATCH",
    )  # fmt: skip
    proxy = await settlement.Settle(bill(child, 100, agent_id=dad), timeout=10)
    assert proxy.agent_id == dad and legs(proxy) == [(child, 1, 100)]


async def test_s3_declining_the_account_or_family_aid(account, binding, settlement):
    child, _, _ = await family(account, binding, own=100)
    none = await settlement.Settle(bill(child, 1_000, use_personal_account=False), timeout=10)
    assert (legs(none), none.cash_pay_fen) == ([], 1_000)
    own_only = await settlement.Settle(bill(child, 1_000, use_family_aid=False), timeout=10)
    assert (legs(own_only), own_only.cash_pay_fen) == ([(child, 1, 100)], 900)


async def test_s4_a_suspended_payer_is_skipped(account, binding, settlement):
    child, dad, mum = await family(account, binding, own=0)
    await account.SuspendAccount(pb.SuspendAccountRequest(person_id=dad, reason="x",
                                                          request_id=rid()))  # fmt: skip
    s = await settlement.Settle(bill(child, 1_000), timeout=10)
    assert legs(s) == [(mum, 2, 1_000)]


async def test_s5_a_suspended_patient_cannot_settle(account, binding, settlement):
    child, _, _ = await family(account, binding)
    await account.SuspendAccount(pb.SuspendAccountRequest(person_id=child, reason="fraud",
                                                          request_id=rid()))  # fmt: skip
    assert (await refused(settlement.Settle(bill(child, 100))))[1] == "ACCOUNT_SUSPENDED"


async def test_s6_pre_settlement_moves_nothing(account, binding, settlement):
    child, dad, _ = await family(account, binding)
    q = await settlement.PreSettle(bill(child, 6_000), timeout=10)
    assert q.status == spb.SETTLEMENT_STATUS_QUOTED
    assert legs(q) == [(child, 1, 5_000), (dad, 2, 1_000)]
    assert (await get(account, child)).balance_fen == 5_000


async def test_s7_amounts_must_add_up_and_never_be_negative(account, binding, settlement):
    child, _, _ = await family(account, binding)
    for request in (bill(child, 100, medfee_total_fen=99), bill(child, -1)):
        assert (await refused(settlement.Settle(request)))[1] == "INVALID_AMOUNT"
    assert (await get(account, child)).balance_fen == 5_000


async def test_s8_a_repeated_bill_debits_once_and_other_content_is_refused(
    account, binding, settlement
):
    child, _, _ = await family(account, binding)
    request = bill(child, 1_000)
    results = await asyncio.gather(
        *(settlement.Settle(request, timeout=10) for _ in range(5)), return_exceptions=True
    )
    settled = [r for r in results if isinstance(r, spb.Settlement)]
    assert settled and all(r == settled[0] for r in settled)
    assert all("SETTLEMENT_IN_PROGRESS" in r.details() for r in results if r not in settled)
    assert await settlement.Settle(request, timeout=10) == settled[0]
    assert (await get(account, child)).balance_fen == 4_000
    request.personal_burden_fen, request.medfee_total_fen = 999, 999
    assert (await refused(settlement.Settle(request)))[1] == "IDEMPOTENCY_CONFLICT"


async def test_s9_cancel_refunds_every_payer_once_even_after_unbinding(
    account, binding, settlement
):
    child, dad, mum = await family(account, binding)
    s = await settlement.Settle(bill(child, 30_000), timeout=10)
    listing = await binding.ListBindings(bpb.ListBindingsRequest(beneficiary_id=child))
    for b in listing.bindings:
        await binding.RemoveBinding(bpb.RemoveBindingRequest(binding_id=b.binding_id,
                                                             request_id=rid()))  # fmt: skip
    cancel = spb.CancelSettlementRequest(settlement_id=s.settlement_id, reason="wrong bill",
                                         request_id=rid())  # fmt: skip
    c = await settlement.CancelSettlement(cancel, timeout=10)
    assert (c.status, c.cancel_reason) == (CANCELLED, "wrong bill")
    assert await settlement.CancelSettlement(cancel, timeout=10) == c
    cancel.request_id = rid()
    assert (await refused(settlement.CancelSettlement(cancel)))[1] == "ALREADY_CANCELLED"
    assert [(await get(account, p)).balance_fen for p in (child, dad, mum)] == [
        5_000, 20_000, 20_000,
    ]  # fmt: skip


async def test_s10_reversal_cancels_a_settlement_or_tombstones_its_key(
    account, binding, settlement
):
    child, _, _ = await family(account, binding)
    done = bill(child, 1_000)
    await settlement.Settle(done, timeout=10)
    r = await settlement.ReverseSettlement(spb.ReverseSettlementRequest(
        institution_id=HOSPITAL, medins_setl_id=done.medins_setl_id, request_id=rid()))  # fmt: skip
    assert r.settlement_existed and r.settlement.status == CANCELLED
    late = bill(child, 2_000)
    r = await settlement.ReverseSettlement(spb.ReverseSettlementRequest(
        institution_id=HOSPITAL, medins_setl_id=late.medins_setl_id, request_id=rid()))  # fmt: skip
    assert not r.settlement_existed
    assert (await refused(settlement.Settle(late)))[1] == "SETTLEMENT_REVERSED"
    assert (await get(account, child)).balance_fen == 5_000
    get_late = spb.GetSettlementRequest(institution_id=HOSPITAL,
                                        medins_setl_id=late.medins_setl_id)  # fmt: skip
    assert (await refused(settlement.GetSettlement(get_late)))[0] == grpc.StatusCode.NOT_FOUND


async def test_s13_a_payer_lists_what_relatives_spent_from_his_account(
    account, binding, settlement
):
    child, dad, _ = await family(account, binding, own=0)
    s1 = await settlement.Settle(bill(child, 100), timeout=10)
    s2 = await settlement.Settle(bill(child, 200), timeout=10)
    by_payer = await settlement.ListSettlements(spb.ListSettlementsRequest(payer_id=dad))
    assert [s.settlement_id for s in by_payer.settlements] == [s2.settlement_id, s1.settlement_id]
    page = await settlement.ListSettlements(spb.ListSettlementsRequest(patient_id=child,
                                                                       page_size=1))  # fmt: skip
    assert len(page.settlements) == 1 and page.next_page_token
    after = Timestamp(seconds=s2.settled_at.seconds + 1)
    later = await settlement.ListSettlements(
        spb.ListSettlementsRequest(payer_id=dad, start_time=after)
    )
    assert list(later.settlements) == []
    upto = Timestamp(seconds=s1.settled_at.seconds, nanos=s1.settled_at.nanos)  # end excluded
    earlier = await settlement.ListSettlements(
        spb.ListSettlementsRequest(payer_id=dad, end_time=upto)
    )
    assert list(earlier.settlements) == []


async def test_a2_a_resident_child_s_premium_paid_whole_from_one_account(
    account, binding, settlement
):
    parent = await person(account, 1970, 50_000)
    kid = await person(account, 2005, 0, resident=True)
    await binding.CreateBinding(create(parent, kid, CHILD))
    year = dt.date.today().year
    request = spb.PayResidentPremiumRequest(payer_id=parent, beneficiary_id=kid, year=year,
                                            amount_fen=38_000, request_id=rid())  # fmt: skip
    p = await settlement.PayResidentPremium(request, timeout=10)
    assert (p.amount_fen, p.year) == (38_000, year)
    assert await settlement.PayResidentPremium(request, timeout=10) == p
    assert (await get(account, parent)).balance_fen == 12_000
    request.request_id = rid()
    assert (await refused(settlement.PayResidentPremium(request)))[1] == "PREMIUM_ALREADY_PAID"
    request.year, request.amount_fen = year + 1, 20_000
    assert (await refused(settlement.PayResidentPremium(request)))[1] == "INSUFFICIENT_FUNDS"
    stranger = await person(account, 1970, 50_000)
    request.payer_id, request.amount_fen = stranger, 100
    assert (await refused(settlement.PayResidentPremium(request)))[1] == "NOT_BOUND"
    employee_kid = await person(account, 2001, 0)
    await binding.CreateBinding(create(parent, employee_kid, CHILD))
    request.payer_id, request.beneficiary_id = parent, employee_kid
    assert (await refused(settlement.PayResidentPremium(request)))[1] == (
        "BENEFICIARY_NOT_RESIDENT"
    )


async def test_b10_a_new_payer_order_is_followed_by_the_next_settlement(
    account, binding, settlement, redis
):  # rules B10, S2: also when another account replica received the new order
    child, dad, mum = await family(account, binding, own=0)
    assert legs(await settlement.Settle(bill(child, 100), timeout=10)) == [(dad, 2, 100)]
    await binding.SetPayerOrder(bpb.SetPayerOrderRequest(
        beneficiary_id=child, binder_ids=[mum, dad], request_id=rid()), timeout=10)  # fmt: skip
    assert legs(await settlement.Settle(bill(child, 100), timeout=10)) == [(mum, 2, 100)]
    order = [Source(dad, (await binding.GetPayers(bpb.GetPayersRequest(
        beneficiary_id=child))).payers[1].binding_id)]  # fmt: skip
    await AccountStore(redis).set_order(child, order, 10**6)  # as another replica would
    assert legs(await settlement.Settle(bill(child, 100), timeout=10)) == [(dad, 2, 100)]


async def test_a_payment_that_is_not_a_settlement_is_not_found_as_one(account, settlement):
    """Only ids the settlement service makes name settlements: a payment another service made
    at the account service under any other id is neither read nor cancelled as one."""
    patient = await person(account, 1980, 1_000)
    today = dt.date.today().isoformat()
    for payment_id in (" ", "not-a-settlement", "S" + "0" * 23):
        paid = pb.PayFromAccountsRequest(
            payment_id=payment_id, kind=pb.ENTRY_KIND_SETTLEMENT, patient_id=patient,
            sources=[pb.PaySource(person_id=patient)], amount_fen=10, on_date=today,
        )  # fmt: skip
        await account.PayFromAccounts(paid, timeout=10)
        for call in (
            settlement.GetSettlement(spb.GetSettlementRequest(settlement_id=payment_id)),
            settlement.CancelSettlement(spb.CancelSettlementRequest(
                settlement_id=payment_id, reason="x", request_id=rid())),
        ):  # fmt: skip
            assert await refused(call) == (grpc.StatusCode.NOT_FOUND, "SETTLEMENT_NOT_FOUND")
    assert (await get(account, patient)).balance_fen == 970  # paid, and none of it cancelled
