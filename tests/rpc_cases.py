"""A valid request for every RPC of every service, with what it needs set up first (through a
service's token, or a citizen's where only he can make it) and whose record it is: the access
table test calls each as every role, the hostile-input test starts from it and spoils some of
its fields."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any

from gongji.account.v1 import account_pb2 as pb
from gongji.binding.v1 import binding_pb2 as bpb
from gongji.common.v1 import common_pb2
from gongji.settlement.v1 import settlement_pb2 as spb
from services.common.clock import SystemClock, beijing_today, timestamp
from services.settlement.cursor import cursor
from tests.integration.accounts import rid, stop
from tests.integration.bindings import CHILD, create, person
from tests.integration.test_settlement import HOSPITAL, bill
from tests.support import as_, new_pid


@dataclasses.dataclass
class World:
    account: Any
    binding: Any
    settlement: Any
    addresses: dict[str, str] = dataclasses.field(default_factory=dict)  # for other callers


@dataclasses.dataclass
class Case:
    service: str
    request: Any
    person: str  # whose record it is: the citizen's subject
    institution: str = HOSPITAL


def today() -> str:
    return beijing_today(SystemClock()).isoformat()


async def _paid(w: World, pid: str) -> pb.Payment:
    payment: pb.Payment = await w.account.PayFromAccounts(_pay(pid), timeout=10)
    return payment


def _pay(pid: str) -> pb.PayFromAccountsRequest:
    return pb.PayFromAccountsRequest(
        payment_id=rid(),
        kind=pb.ENTRY_KIND_SETTLEMENT,
        patient_id=pid,
        sources=[pb.PaySource(person_id=pid)],
        amount_fen=100,
        on_date=today(),
    )


async def bound_family(w: World) -> tuple[str, str, str, bpb.Binding]:
    child, dad, mum = (
        await person(w.account, 1990),
        await person(w.account, 1960),
        await person(w.account, 1962),
    )
    first = await w.binding.CreateBinding(create(dad, child, CHILD), timeout=10)
    await w.binding.CreateBinding(create(mum, child, CHILD), timeout=10)
    return child, dad, mum, first


async def _settled(w: World, patient: str) -> spb.Settlement:
    settled: spb.Settlement = await w.settlement.Settle(bill(patient, 100), timeout=10)
    return settled


def _purchase(pid: str, policy_no: str) -> pb.PurchaseCommercialInsuranceRequest:
    return pb.PurchaseCommercialInsuranceRequest(
        person_id=pid,
        amount_fen=100,
        insurer_code="PICC-HN",
        policy_no=policy_no,
        request_id=rid(),
    )


async def c_open(w: World) -> Case:
    pid = new_pid()
    return Case(
        "account",
        pb.OpenAccountRequest(
            person_id=pid,
            name="李四",
            insurance_type=common_pb2.INSURANCE_TYPE_EMPLOYEE,
            region_code="430102",
            request_id=rid(),
        ),
        pid,
    )


async def c_get(w: World) -> Case:
    pid = await person(w.account)
    return Case("account", pb.GetAccountRequest(person_id=pid), pid)


async def c_batch(w: World) -> Case:
    pid = await person(w.account)
    return Case("account", pb.BatchGetAccountsRequest(person_ids=[pid]), pid)


async def c_credit(w: World) -> Case:
    pid = await person(w.account)
    return Case(
        "account",
        pb.CreditRequest(
            person_id=pid,
            amount_fen=100,
            kind=pb.CREDIT_KIND_MONTHLY_ALLOCATION,
            memo="2026-11",
            request_id=rid(),
        ),
        pid,
    )


async def c_entries(w: World) -> Case:
    pid = await person(w.account)
    return Case("account", pb.ListEntriesRequest(person_id=pid), pid)


async def c_suspend(w: World) -> Case:
    pid = await person(w.account)
    return Case(
        "account", pb.SuspendAccountRequest(person_id=pid, reason="稽核", request_id=rid()), pid
    )


async def c_resume(w: World) -> Case:
    pid = await person(w.account)
    await w.account.SuspendAccount(
        pb.SuspendAccountRequest(person_id=pid, reason="稽核", request_id=rid()), timeout=10
    )
    return Case("account", pb.ResumeAccountRequest(person_id=pid, request_id=rid()), pid)


async def c_purchase(w: World) -> Case:
    pid = await person(w.account)
    return Case("account", _purchase(pid, rid()[:20]), pid)


async def c_cancel_policy(w: World) -> Case:
    pid = await person(w.account)
    policy_no = rid()[:20]
    await w.account.PurchaseCommercialInsurance(_purchase(pid, policy_no), timeout=10)
    return Case(
        "account",
        pb.CancelCommercialInsuranceRequest(person_id=pid, policy_no=policy_no, request_id=rid()),
        pid,
    )


async def c_withdraw(w: World) -> Case:
    pid = await person(w.account)
    await stop(w.account, pid, pb.STOP_REASON_DEATH)
    return Case(
        "account",
        pb.WithdrawBalanceRequest(
            person_id=pid, reason=pb.WITHDRAWAL_REASON_DEATH, payee="heirs", request_id=rid()
        ),
        pid,
    )


async def c_stop(w: World) -> Case:
    pid = await person(w.account)
    return Case(
        "account",
        pb.StopInsuranceRequest(person_id=pid, reason=pb.STOP_REASON_EMIGRATION, request_id=rid()),
        pid,
    )


async def c_change_type(w: World) -> Case:
    pid = await person(w.account)
    return Case(
        "account",
        pb.ChangeInsuranceTypeRequest(
            person_id=pid, insurance_type=common_pb2.INSURANCE_TYPE_RESIDENT, request_id=rid()
        ),
        pid,
    )


async def c_transfer(w: World) -> Case:
    pid = await person(w.account)
    return Case(
        "account",
        pb.TransferAccountRequest(person_id=pid, to_region_code="430103", request_id=rid()),
        pid,
    )


async def c_contribute(w: World) -> Case:
    pid = await person(w.account)
    request = pb.RecordContributionRequest(
        person_id=pid, month="2025-06", base_fen=800_000, employee_fen=16_000,
        employer_fen=48_000, payer=pb.CONTRIBUTION_PAYER_EMPLOYER, request_id=rid(),
    )  # fmt: skip
    return Case("account", request, pid)


async def c_contribution_record(w: World) -> Case:
    pid = await person(w.account)
    return Case("account", pb.GetContributionRecordRequest(person_id=pid), pid)


async def c_pay(w: World) -> Case:
    pid = await person(w.account)
    return Case("account", _pay(pid), pid)


async def c_get_payment(w: World) -> Case:
    pid = await person(w.account)
    paid = await _paid(w, pid)
    return Case("account", pb.GetPaymentRequest(payment_id=paid.payment_id), pid)


async def c_list_payments(w: World) -> Case:
    pid = await person(w.account)
    await _paid(w, pid)
    return Case("account", pb.ListPaymentsRequest(patient_id=pid, limit=10), pid)


async def c_cancel_payment(w: World) -> Case:
    pid = await person(w.account)
    paid = await _paid(w, pid)
    return Case(
        "account",
        pb.CancelPaymentRequest(payment_id=paid.payment_id, reason="退费", cancel_request_id=rid()),
        pid,
    )


async def c_reverse_payment(w: World) -> Case:
    pid = await person(w.account)
    paid = await _paid(w, pid)
    return Case(
        "account",
        pb.ReversePaymentRequest(payment_id=paid.payment_id, cancel_request_id=rid()),
        pid,
    )


def _grant(binder: str, beneficiary: str) -> pb.GrantFamilyAidRequest:
    return pb.GrantFamilyAidRequest(
        binder_id=binder,
        beneficiary_id=beneficiary,
        binding_id="B" + rid()[:20],
        start_date=today(),
    )


async def c_grant(w: World) -> Case:
    binder, beneficiary = await person(w.account, 1960), await person(w.account, 1990)
    return Case("account", _grant(binder, beneficiary), binder)


async def c_revoke(w: World) -> Case:
    binder, beneficiary = await person(w.account, 1960), await person(w.account, 1990)
    granted = _grant(binder, beneficiary)
    await w.account.GrantFamilyAid(granted, timeout=10)
    return Case(
        "account",
        pb.RevokeFamilyAidRequest(binder_id=binder, binding_id=granted.binding_id),
        binder,
    )


async def c_order(w: World) -> Case:
    beneficiary = await person(w.account, 1990)
    return Case(
        "account", pb.SetFamilyAidOrderRequest(beneficiary_id=beneficiary, version=1), beneficiary
    )


async def c_create(w: World) -> Case:
    parent, child = await person(w.account, 1960), await person(w.account, 1990)
    return Case("binding", create(parent, child, CHILD), parent)


async def c_remove(w: World) -> Case:
    _, dad, _, first = await bound_family(w)
    return Case(
        "binding", bpb.RemoveBindingRequest(binding_id=first.binding_id, request_id=rid()), dad
    )


async def c_get_binding(w: World) -> Case:
    _, dad, _, first = await bound_family(w)
    return Case("binding", bpb.GetBindingRequest(binding_id=first.binding_id), dad)


async def c_list_bindings(w: World) -> Case:
    _, dad, _, _ = await bound_family(w)
    return Case("binding", bpb.ListBindingsRequest(binder_id=dad), dad)


async def c_payers(w: World) -> Case:
    child, _, _, _ = await bound_family(w)
    return Case("binding", bpb.GetPayersRequest(beneficiary_id=child), child)


async def c_reorder(w: World) -> Case:
    child, dad, mum, _ = await bound_family(w)
    return Case(
        "binding",
        bpb.SetPayerOrderRequest(beneficiary_id=child, binder_ids=[mum, dad], request_id=rid()),
        dad,
    )


async def c_confirm(w: World) -> Case:
    """A binding a citizen made for his adult child, awaiting the child's consent (B14)."""
    parent, child = await person(w.account, 1960), await person(w.account, 1990)
    made = await as_(w.addresses, "binding", "citizen", parent, "CreateBinding",
                     create(parent, child, CHILD))  # fmt: skip
    assert made.status == bpb.BINDING_STATUS_PENDING_CONSENT
    return Case(
        "binding", bpb.ConfirmBindingRequest(binding_id=made.binding_id, request_id=rid()), child
    )


async def c_presettle(w: World) -> Case:
    patient = await person(w.account)
    return Case("settlement", bill(patient, 100), patient)


async def c_settle(w: World) -> Case:
    patient = await person(w.account)
    return Case("settlement", bill(patient, 100), patient)


async def c_cancel(w: World) -> Case:
    patient = await person(w.account)
    settled = await _settled(w, patient)
    return Case(
        "settlement",
        spb.CancelSettlementRequest(
            settlement_id=settled.settlement_id, reason="退费", request_id=rid()
        ),
        patient,
    )


async def c_reverse(w: World) -> Case:
    patient = await person(w.account)
    settled = await _settled(w, patient)
    return Case(
        "settlement",
        spb.ReverseSettlementRequest(
            institution_id=HOSPITAL, medins_setl_id=settled.medins_setl_id, request_id=rid()
        ),
        patient,
    )


async def c_get_settlement(w: World) -> Case:
    patient = await person(w.account)
    settled = await _settled(w, patient)
    return Case(
        "settlement", spb.GetSettlementRequest(settlement_id=settled.settlement_id), patient
    )


async def c_list_settlements(w: World) -> Case:
    patient = await person(w.account)
    await _settled(w, patient)
    return Case("settlement", spb.ListSettlementsRequest(patient_id=patient), patient)


async def _family_with_autopay(w: World, enabled: bool) -> spb.SetPremiumAutoPayRequest:
    parent = await person(w.account, 1970, 50_000)
    kid = await person(w.account, 2005, 0, resident=True)
    await w.binding.CreateBinding(create(parent, kid, CHILD), timeout=10)
    return spb.SetPremiumAutoPayRequest(
        beneficiary_id=kid, payer_id=parent, enabled=enabled, request_id=rid()
    )


async def c_set_autopay(w: World) -> Case:
    """The payer of an auto-pay switches it off."""
    request = await _family_with_autopay(w, True)
    await w.settlement.SetPremiumAutoPay(request, timeout=10)
    off = spb.SetPremiumAutoPayRequest(
        beneficiary_id=request.beneficiary_id, payer_id=request.payer_id, enabled=False,
        request_id=rid(),
    )  # fmt: skip
    return Case("settlement", off, request.payer_id)


async def c_get_autopay(w: World) -> Case:
    request = await _family_with_autopay(w, False)  # a record the job skips
    await w.settlement.SetPremiumAutoPay(request, timeout=10)
    return Case(
        "settlement", spb.GetPremiumAutoPayRequest(beneficiary_id=request.beneficiary_id),
        request.payer_id,
    )  # fmt: skip


async def c_run_deductions(w: World) -> Case:
    """Next year's premiums of every enabled auto-pay, this family's among them."""
    family = await _family_with_autopay(w, True)
    await w.settlement.SetPremiumAutoPay(family, timeout=10)
    request = spb.RunPremiumDeductionsRequest(year=dt.date.today().year + 1, run_id=rid())
    return Case("settlement", request, family.payer_id)


async def c_premium(w: World) -> Case:
    parent, kid = (
        await person(w.account, 1970, 50_000),
        await person(w.account, 2005, 0, resident=True),
    )
    await w.binding.CreateBinding(create(parent, kid, CHILD), timeout=10)
    return Case(
        "settlement",
        spb.PayResidentPremiumRequest(
            payer_id=parent,
            beneficiary_id=kid,
            year=dt.date.today().year,
            amount_fen=38_000,
            request_id=rid(),
        ),
        parent,
    )


async def c_follow(w: World) -> Case:
    pid = await person(w.account)
    return Case("account", pb.FollowEntriesRequest(person_id=pid, after=0), pid)


async def c_watch(w: World) -> Case:
    """A watch resuming after the person's first entry (his credit): his settlement follows
    at once."""
    patient = await person(w.account)
    await _settled(w, patient)
    return Case(
        "settlement", spb.WatchPaymentsRequest(person_id=patient, cursor=cursor(patient, 1)),
        patient,
    )  # fmt: skip


def _grant_quota(funder: str, relative: str, amount: int = 1_000) -> bpb.GrantQuotaRequest:
    return bpb.GrantQuotaRequest(
        funder_id=funder, relative_id=relative, relationship=CHILD, amount_fen=amount,
        request_id=rid(),
    )  # fmt: skip


async def quota_family(w: World) -> tuple[str, str, bpb.Quota]:
    """A father in Changsha and his son in Xianyang, the father's quota for the son (N1)."""
    father = await person(w.account, 1960, 50_000)
    son = await person(w.account, 1990, 0, region="610402")
    quota = await w.binding.GrantQuota(_grant_quota(father, son), timeout=10)
    return father, son, quota


async def c_open_quota(w: World) -> Case:
    father, son = await person(w.account, 1960, 5_000), await person(w.account, 1990)
    request = pb.OpenQuotaRequest(
        quota_id="Q4343" + rid()[:16], funder_id=father, relative_id=son, relationship=CHILD,
        amount_fen=1_000, max_quotas=10, seq=1, created_at=timestamp(1),
    )  # fmt: skip
    return Case("account", request, father)


async def c_change_quota_amount(w: World) -> Case:
    father, _, quota = await quota_family(w)
    request = pb.ChangeQuotaAmountRequest(quota_id=quota.quota_id, funder_id=father,
                                          amount_fen=2_000)  # fmt: skip
    return Case("account", request, father)


async def c_close_quota(w: World) -> Case:
    father, _, quota = await quota_family(w)
    request = pb.CloseQuotaRequest(quota_id=quota.quota_id, funder_id=father,
                                   reason=bpb.QUOTA_END_REASON_BY_FUNDER)  # fmt: skip
    return Case("account", request, father)


async def c_activate_quota(w: World) -> Case:
    father, _, quota = await quota_family(w)
    return Case(
        "account", pb.ActivateQuotaRequest(quota_id=quota.quota_id, funder_id=father), father
    )


async def c_get_quotas(w: World) -> Case:
    father, _, quota = await quota_family(w)
    refs = [pb.QuotaRef(funder_id=father, quota_id=quota.quota_id)]
    return Case("account", pb.GetQuotasRequest(quotas=refs), father)


async def c_day_payments(w: World) -> Case:
    patient = await person(w.account)
    await _settled(w, patient)
    request = pb.ListDayPaymentsRequest(institution_id=HOSPITAL, date=today(), limit=10)
    return Case("account", request, patient)


async def c_clearing_payments(w: World) -> Case:
    _, son, _ = await quota_family(w)
    return Case("account", pb.ListClearingPaymentsRequest(month=today()[:7], limit=10), son)


async def c_grant_quota(w: World) -> Case:
    father, son = await person(w.account, 1960, 5_000), await person(w.account, 1990)
    return Case("binding", _grant_quota(father, son), father)


async def c_change_quota(w: World) -> Case:
    father, _, quota = await quota_family(w)
    request = bpb.ChangeQuotaRequest(quota_id=quota.quota_id, amount_fen=2_000, request_id=rid())
    return Case("binding", request, father)


async def c_end_quota(w: World) -> Case:
    father, _, quota = await quota_family(w)
    return Case("binding", bpb.EndQuotaRequest(quota_id=quota.quota_id, request_id=rid()),
                father)  # fmt: skip


async def c_get_quota(w: World) -> Case:
    father, _, quota = await quota_family(w)
    return Case("binding", bpb.GetQuotaRequest(quota_id=quota.quota_id), father)


async def c_list_quotas(w: World) -> Case:
    father, _, _ = await quota_family(w)
    return Case("binding", bpb.ListQuotasRequest(funder_id=father), father)


async def c_confirm_quota(w: World) -> Case:
    """A quota a citizen granted his adult son, awaiting the son's consent (B14)."""
    father, son = await person(w.account, 1960, 5_000), await person(w.account, 1990)
    made = await as_(w.addresses, "binding", "citizen", father, "GrantQuota",
                     _grant_quota(father, son))  # fmt: skip
    assert made.status == bpb.QUOTA_STATUS_PENDING_CONSENT
    return Case("binding", bpb.ConfirmQuotaRequest(quota_id=made.quota_id, request_id=rid()),
                son)  # fmt: skip


async def c_clearing(w: World) -> Case:
    _, son, _ = await quota_family(w)
    return Case("settlement", spb.GetClearingStatementRequest(month=today()[:7]), son)


async def c_reconcile(w: World) -> Case:
    patient = await person(w.account)
    await _settled(w, patient)
    request = spb.ReconcileDayRequest(institution_id=HOSPITAL, date=today())
    return Case("settlement", request, patient)


CASES: dict[str, Callable[[World], Awaitable[Case]]] = {
    "OpenAccount": c_open,
    "GetAccount": c_get,
    "BatchGetAccounts": c_batch,
    "Credit": c_credit,
    "ListEntries": c_entries,
    "SuspendAccount": c_suspend,
    "ResumeAccount": c_resume,
    "PurchaseCommercialInsurance": c_purchase,
    "CancelCommercialInsurance": c_cancel_policy,
    "WithdrawBalance": c_withdraw,
    "TransferAccount": c_transfer,
    "RecordContribution": c_contribute,
    "GetContributionRecord": c_contribution_record,
    "StopInsurance": c_stop,
    "ChangeInsuranceType": c_change_type,
    "PayFromAccounts": c_pay,
    "GetPayment": c_get_payment,
    "ListPayments": c_list_payments,
    "CancelPayment": c_cancel_payment,
    "ReversePayment": c_reverse_payment,
    "GrantFamilyAid": c_grant,
    "RevokeFamilyAid": c_revoke,
    "SetFamilyAidOrder": c_order,
    "FollowEntries": c_follow,
    "CreateBinding": c_create,
    "RemoveBinding": c_remove,
    "GetBinding": c_get_binding,
    "ListBindings": c_list_bindings,
    "GetPayers": c_payers,
    "SetPayerOrder": c_reorder,
    "ConfirmBinding": c_confirm,
    "PreSettle": c_presettle,
    "Settle": c_settle,
    "CancelSettlement": c_cancel,
    "ReverseSettlement": c_reverse,
    "GetSettlement": c_get_settlement,
    "ListSettlements": c_list_settlements,
    "PayResidentPremium": c_premium,
    "SetPremiumAutoPay": c_set_autopay,
    "GetPremiumAutoPay": c_get_autopay,
    "RunPremiumDeductions": c_run_deductions,
    "WatchPayments": c_watch,
    "OpenQuota": c_open_quota,
    "ChangeQuotaAmount": c_change_quota_amount,
    "CloseQuota": c_close_quota,
    "ActivateQuota": c_activate_quota,
    "GetQuotas": c_get_quotas,
    "ListDayPayments": c_day_payments,
    "ListClearingPayments": c_clearing_payments,
    "GrantQuota": c_grant_quota,
    "ChangeQuota": c_change_quota,
    "EndQuota": c_end_quota,
    "GetQuota": c_get_quota,
    "ListQuotas": c_list_quotas,
    "ConfirmQuota": c_confirm_quota,
    "GetClearingStatement": c_clearing,
    "ReconcileDay": c_reconcile,
}

STREAMING = frozenset(
    m.name
    for module in (pb, bpb, spb)
    for service in module.DESCRIPTOR.services_by_name.values()
    for m in service.methods
    if m.server_streaming
)


async def answer(stub: Any, rpc: str, request: Any, quiet_s: float | None = None) -> Any:
    """A call's answer; of a streaming call (WatchPayments), its first message, then the stream
    is cancelled. `quiet_s`: a stream still open without a message after that long is an
    answer too (None): it waits for what has not happened yet."""
    call = getattr(stub, rpc)(request, timeout=10)
    if rpc not in STREAMING:
        return await call
    try:
        return await asyncio.wait_for(call.read(), quiet_s)
    except TimeoutError:
        return None
    finally:
        call.cancel()
