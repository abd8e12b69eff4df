"""One request id, one request (API.md "Conventions", rule S8): a request_id reused with other
content is refused even while the first request still runs, for every mutating RPC; defaults
written out mean the same as defaults left unset."""

from __future__ import annotations

import asyncio

import grpc

from gongji.account.v1 import account_pb2 as pb
from gongji.settlement.v1 import settlement_pb2 as spb
from tests.integration.accounts import credit, get, open_account, rid
from tests.integration.test_settlement import HOSPITAL, bill, family
from tests.support import refused

CONFLICT = (grpc.StatusCode.ALREADY_EXISTS, "IDEMPOTENCY_CONFLICT")


async def test_one_credit_request_id_is_not_applied_to_two_accounts(account):
    a, b = await open_account(account), await open_account(account)
    request = pb.CreditRequest(person_id=a, amount_fen=100, kind=1, memo="m", request_id=rid())
    await account.Credit(request, timeout=5)
    request.person_id = b
    assert await refused(account.Credit(request, timeout=5)) == CONFLICT
    assert ((await get(account, a)).balance_fen, (await get(account, b)).balance_fen) == (100, 0)


async def test_purchases_raced_under_one_request_id_with_other_content_buy_one(account):
    pid = await open_account(account, 10_000)
    request_id = rid()

    def buy(policy_no: str) -> pb.PurchaseCommercialInsuranceRequest:
        return pb.PurchaseCommercialInsuranceRequest(
            person_id=pid, amount_fen=1_000, insurer_code="PICC-HN", policy_no=policy_no,
            request_id=request_id,
        )  # fmt: skip

    results = await asyncio.gather(
        *(account.PurchaseCommercialInsurance(buy(f"P{i}"), timeout=5) for i in range(5)),
        return_exceptions=True,
    )
    bought = [r for r in results if isinstance(r, pb.LedgerEntry)]
    assert len(bought) == 1
    others = [r for r in results if r not in bought]
    assert all("IDEMPOTENCY_CONFLICT" in r.details() or "REQUEST_IN_PROGRESS" in r.details()
               or "LOCK_TIMEOUT" in r.details() for r in others), others  # fmt: skip
    assert (await get(account, pid)).balance_fen == 9_000


async def test_one_cancel_request_id_cancels_one_settlement(account, binding, settlement):
    child, _, _ = await family(account, binding)
    first = await settlement.Settle(bill(child, 100), timeout=10)
    second = await settlement.Settle(bill(child, 200), timeout=10)
    cancel = spb.CancelSettlementRequest(settlement_id=first.settlement_id, request_id=rid())
    await settlement.CancelSettlement(cancel, timeout=10)
    cancel.reason = "another reason"
    assert await refused(settlement.CancelSettlement(cancel, timeout=10)) == CONFLICT
    cancel.reason, cancel.settlement_id = "", second.settlement_id
    assert await refused(settlement.CancelSettlement(cancel, timeout=10)) == CONFLICT
    got = await settlement.GetSettlement(
        spb.GetSettlementRequest(settlement_id=second.settlement_id)
    )
    assert got.status == spb.SETTLEMENT_STATUS_SETTLED
    assert (await get(account, child)).balance_fen == 5_000 - 200


async def test_one_reversal_request_id_reverses_one_key(account, binding, settlement):
    child, _, _ = await family(account, binding)
    done = [bill(child, 100), bill(child, 200)]
    for request in done:
        await settlement.Settle(request, timeout=10)
    reversal = spb.ReverseSettlementRequest(
        institution_id=HOSPITAL, medins_setl_id=done[0].medins_setl_id, request_id=rid()
    )
    first = await settlement.ReverseSettlement(reversal, timeout=10)
    assert await settlement.ReverseSettlement(reversal, timeout=10) == first
    reversal.medins_setl_id = done[1].medins_setl_id
    assert await refused(settlement.ReverseSettlement(reversal, timeout=10)) == CONFLICT
    assert (await get(account, child)).balance_fen == 5_000 - 200


async def test_an_explicit_default_is_the_same_bill_as_an_unset_one(account, binding, settlement):
    child, _, _ = await family(account, binding)  # rule S8
    unset = bill(child, 300)
    first = await settlement.Settle(unset, timeout=10)
    explicit = bill(child, 300, medins_setl_id=unset.medins_setl_id, use_personal_account=True,
                    use_family_aid=True, service_date=first.service_date)  # fmt: skip
    assert await settlement.Settle(explicit, timeout=10) == first
    await credit(account, child, 1)
    assert (await get(account, child)).balance_fen == 5_000 - 300 + 1
