"""Stopping insurance and changing its type (A9), and the closures that depend on them: withdrawal
after the matching stop (A4), a move to a province that cannot receive the balance (A5)."""

import datetime as dt

import grpc

from gongji.account.v1 import account_pb2 as pb
from gongji.binding.v1 import binding_pb2 as bpb
from gongji.common.v1 import common_pb2
from gongji.settlement.v1 import settlement_pb2 as spb
from tests.integration.accounts import all_entries, credit, get, open_account, pay, rid, stop
from tests.integration.bindings import CHILD, create, days_from_today, listed, person
from tests.integration.test_binding_events import lapsed
from tests.integration.test_contributions import month_of
from tests.integration.test_settlement import bill, legs
from tests.integration.test_special import purchase, transfer, withdrawal
from tests.support import eventually, new_pid, refused

DEATH, EMIGRATION = pb.STOP_REASON_DEATH, pb.STOP_REASON_EMIGRATION
EMPLOYEE, RESIDENT = common_pb2.INSURANCE_TYPE_EMPLOYEE, common_pb2.INSURANCE_TYPE_RESIDENT
OWN, FAMILY = spb.LEG_KIND_OWN_ACCOUNT, spb.LEG_KIND_FAMILY_AID


def change(pid: str, insurance_type: int) -> pb.ChangeInsuranceTypeRequest:
    return pb.ChangeInsuranceTypeRequest(
        person_id=pid, insurance_type=insurance_type, request_id=rid()
    )


def premium(payer: str, beneficiary: str, amount: int = 38_000) -> spb.PayResidentPremiumRequest:
    return spb.PayResidentPremiumRequest(
        payer_id=payer, beneficiary_id=beneficiary, year=dt.date.today().year,
        amount_fen=amount, request_id=rid(),
    )  # fmt: skip


# -- StopInsurance -----------------------------------------------------------------------------
async def test_a_stop_records_its_reason_and_time_and_is_kept_once(account):  # rule A9
    pid = await open_account(account, 500)
    stopped = await stop(account, pid, EMIGRATION)
    assert stopped.stopped_reason == EMIGRATION and stopped.stopped_at.seconds > 0
    assert (stopped.status, stopped.balance_fen) == (pb.ACCOUNT_STATUS_ACTIVE, 500)
    assert await get(account, pid) == stopped
    assert await stop(account, pid, EMIGRATION) == stopped  # the same reason: unchanged
    assert await refused(stop(account, pid, DEATH)) == (
        grpc.StatusCode.FAILED_PRECONDITION, "INSURANCE_STOPPED",
    )  # fmt: skip
    assert await get(account, pid) == stopped


async def test_who_cannot_be_stopped(account):  # rule A9
    resident = await open_account(account, resident=True)
    assert (await refused(stop(account, resident)))[1] == "NO_PERSONAL_ACCOUNT"
    assert (await refused(stop(account, new_pid())))[1] == "ACCOUNT_NOT_FOUND"
    suspended = await open_account(account, 100)
    await account.SuspendAccount(pb.SuspendAccountRequest(person_id=suspended, reason="x",
                                                          request_id=rid()))  # fmt: skip
    assert (await stop(account, suspended)).stopped_reason == DEATH  # ACTIVE or SUSPENDED
    moved = await open_account(account, 100)
    await account.TransferAccount(transfer(moved, "610400"))
    assert (await refused(stop(account, moved)))[1] == "ACCOUNT_CLOSED"
    assert (await get(account, resident)).stopped_reason == pb.STOP_REASON_UNSPECIFIED


async def test_a_stopped_account_pays_buys_records_and_binds_nothing(account, binding):  # A9
    pid = await person(account, 1970, balance=10_000)
    kid = await person(account, 2000)
    await stop(account, pid, DEATH)
    assert (await refused(pay(account, pid, 10)))[1] == "INSURANCE_STOPPED"
    assert (await refused(account.PurchaseCommercialInsurance(purchase(pid, 100))))[1] == (
        "INSURANCE_STOPPED"
    )
    assert (await refused(account.RecordContribution(month_of(pid, "2025-03"))))[1] == (
        "INSURANCE_STOPPED"
    )
    assert (await refused(binding.CreateBinding(create(pid, kid, CHILD))))[1] == (
        "INSURANCE_STOPPED"
    )
    assert (await refused(account.ChangeInsuranceType(change(pid, RESIDENT))))[1] == (
        "INSURANCE_STOPPED"
    )
    assert (await get(account, pid)).balance_fen == 10_000
    assert (await credit(account, pid, 50)).balance_after_fen == 10_050  # credits still written


async def test_a_purchase_by_a_suspended_stopped_account_names_the_suspension_first(account):
    # rule A3's order of refusals: ACCOUNT_SUSPENDED, INSURANCE_STOPPED, INSURER_NOT_PARTNER
    pid = await open_account(account, 1_000)
    await stop(account, pid, DEATH)
    foreign = purchase(pid, 100)
    foreign.insurer_code = "NOT-A-PARTNER"
    assert (await refused(account.PurchaseCommercialInsurance(foreign)))[1] == ("INSURANCE_STOPPED")
    await account.SuspendAccount(pb.SuspendAccountRequest(person_id=pid, reason="x",
                                                          request_id=rid()))  # fmt: skip
    assert (await refused(account.PurchaseCommercialInsurance(foreign)))[1] == ("ACCOUNT_SUSPENDED")


async def test_a_stopped_payer_is_skipped_and_a_stopped_patient_cannot_settle(
    account, binding, settlement
):  # rules S4, A9
    father, mother = await person(account, 1970, 3_000), await person(account, 1971, 5_000)
    kid = await person(account, 2000, balance=0)
    for parent in (father, mother):
        await binding.CreateBinding(create(parent, kid, CHILD))
    await stop(account, father, DEATH)
    s = await settlement.Settle(bill(kid, 4_000), timeout=10)
    assert legs(s) == [(mother, FAMILY, 4_000)]  # the father, 1st payer, is skipped
    assert (await get(account, father)).balance_fen == 3_000
    assert (await refused(settlement.Settle(bill(father, 100), timeout=10)))[1] == (
        "INSURANCE_STOPPED"
    )
    assert (await get(account, father)).balance_fen == 3_000


async def test_a_refund_to_a_stopped_account_is_written(account, binding, settlement):  # A9, S9
    pid = await person(account, 1970, 2_000)
    s = await settlement.Settle(bill(pid, 700), timeout=10)
    await stop(account, pid, EMIGRATION)
    await settlement.CancelSettlement(
        spb.CancelSettlementRequest(settlement_id=s.settlement_id, reason="x", request_id=rid()),
        timeout=10,
    )
    assert (await get(account, pid)).balance_fen == 2_000


# -- WithdrawBalance after the stop (A4) -------------------------------------------------------
async def test_a_withdrawal_needs_the_stop_with_the_matching_reason(account):  # rule A4
    pid = await open_account(account, 900)
    assert await refused(account.WithdrawBalance(withdrawal(pid))) == (
        grpc.StatusCode.FAILED_PRECONDITION, "INSURANCE_NOT_STOPPED",
    )  # fmt: skip
    await stop(account, pid, EMIGRATION)
    assert await refused(account.WithdrawBalance(withdrawal(pid))) == (  # DEATH
        grpc.StatusCode.FAILED_PRECONDITION, "WITHDRAWAL_NOT_ALLOWED",
    )  # fmt: skip
    assert (await get(account, pid)).balance_fen == 900
    e = await account.WithdrawBalance(withdrawal(pid, pb.WITHDRAWAL_REASON_EMIGRATION))
    assert (e.kind, e.amount_fen, e.reference) == (pb.ENTRY_KIND_WITHDRAWAL, -900, "heirs")
    assert (await refused(account.WithdrawBalance(withdrawal(pid))))[1] == "ACCOUNT_CLOSED"


async def test_a_re_opened_account_starts_without_the_stop(account):  # rules A4, A9
    pid = await open_account(account, 100)
    await stop(account, pid, DEATH)
    await account.WithdrawBalance(withdrawal(pid))
    reopened = await account.OpenAccount(pb.OpenAccountRequest(
        person_id=pid, name="李四", insurance_type=EMPLOYEE, region_code="430102",
        request_id=rid(),
    ))  # fmt: skip
    assert (reopened.status, reopened.stopped_reason) == (pb.ACCOUNT_STATUS_ACTIVE, 0)
    assert not reopened.HasField("stopped_at")
    await credit(account, pid, 300)
    assert (await pay(account, pid, 10)).shares[0].amount_fen == 10


# -- TransferAccount to a province that cannot receive the balance (A5) -----------------------
async def test_a_move_to_a_province_that_cannot_receive_pays_the_payee(account):  # rule A5
    pid = await open_account(account, 6_000, region="430102")
    assert await refused(account.TransferAccount(transfer(pid, "540100"))) == (
        grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT",
    )  # fmt: skip
    assert (await get(account, pid)).balance_fen == 6_000
    request = transfer(pid, "540100")
    request.payee = "ICBC 6222 0000 1234"
    moved = await account.TransferAccount(request)
    assert (moved.status, moved.balance_fen) == (pb.ACCOUNT_STATUS_TRANSFERRED_OUT, 0)
    newest = (await all_entries(account, pid))[0]
    assert (newest.kind, newest.amount_fen, newest.reference) == (
        pb.ENTRY_KIND_WITHDRAWAL, -6_000, "ICBC 6222 0000 1234",
    )  # fmt: skip


async def test_a_refund_after_such_a_move_is_paid_on_to_the_payee(account):  # rules A5, S9
    pid = await open_account(account, 1_000, region="430102")
    await account.PurchaseCommercialInsurance(purchase(pid, 300, "POL-tibet"))
    request = transfer(pid, "540100")
    request.payee = "bank 6222"
    await account.TransferAccount(request)
    await account.CancelCommercialInsurance(pb.CancelCommercialInsuranceRequest(
        person_id=pid, policy_no="POL-tibet", request_id=rid()))  # fmt: skip
    refund, paid_on = (await all_entries(account, pid))[1::-1]
    assert (refund.kind, refund.amount_fen) == (pb.ENTRY_KIND_REFUND, 300)
    assert (paid_on.kind, paid_on.amount_fen, paid_on.reference) == (
        pb.ENTRY_KIND_WITHDRAWAL, -300, "bank 6222",
    )  # fmt: skip


async def test_a_move_to_a_province_that_receives_ignores_the_payee(account):  # rule A5
    pid = await open_account(account, 700, region="430102")
    request = transfer(pid, "610400")
    request.payee = "bank 6222"
    await account.TransferAccount(request)
    newest = (await all_entries(account, pid))[0]
    assert (newest.kind, newest.reference) == (pb.ENTRY_KIND_TRANSFER_OUT, "610400")


async def test_a_refund_after_an_ordinary_move_follows_the_balance_there(account):  # A5, S9
    pid = await open_account(account, 1_000, region="430102")
    await account.PurchaseCommercialInsurance(purchase(pid, 300, "POL-xian"))
    await account.TransferAccount(transfer(pid, "610400"))
    await account.CancelCommercialInsurance(pb.CancelCommercialInsuranceRequest(
        person_id=pid, policy_no="POL-xian", request_id=rid()))  # fmt: skip
    refund, paid_on = (await all_entries(account, pid))[1::-1]
    assert (refund.kind, refund.amount_fen) == (pb.ENTRY_KIND_REFUND, 300)
    assert (paid_on.kind, paid_on.amount_fen, paid_on.reference) == (
        pb.ENTRY_KIND_TRANSFER_OUT, -300, "610400",
    )  # fmt: skip
    assert (await get(account, pid)).balance_fen == 0


async def test_a_stopped_account_may_still_move(account):  # rule A9
    pid = await open_account(account, 400, region="430102")
    await stop(account, pid, EMIGRATION)
    assert (await account.TransferAccount(transfer(pid, "610400"))).status == (
        pb.ACCOUNT_STATUS_TRANSFERRED_OUT
    )


# -- ChangeInsuranceType (A9) ------------------------------------------------------------------
async def test_an_employee_who_becomes_resident_keeps_his_account_for_himself(
    account, binding, settlement
):  # rules A9, B1, S2a, S4
    father = await person(account, 1970, 50_000)
    kid = await person(account, 2000, balance=0, resident=True)
    spouse = await person(account, 1972, balance=0)
    wife_s = await binding.CreateBinding(create(father, spouse))
    await binding.CreateBinding(create(father, kid, CHILD))
    his = await binding.CreateBinding(create(await person(account, 1973, 1_000), father))
    changed = await account.ChangeInsuranceType(change(father, RESIDENT))
    assert (changed.insurance_type, changed.balance_fen) == (RESIDENT, 50_000)
    assert changed.status == pb.ACCOUNT_STATUS_ACTIVE
    # a resident is never a binder: even before his bindings lapse, he pays for no relative
    assert legs(await settlement.Settle(bill(spouse, 500), timeout=10)) == []
    await eventually(lambda: lapsed(binding, wife_s.binding_id))

    async def none_as_binder() -> bool:
        return await listed(binding, binder=father) == []

    await eventually(none_as_binder)
    assert not await lapsed(binding, his.binding_id)  # he is still a beneficiary
    assert (await refused(binding.CreateBinding(create(father, kid, CHILD))))[1] == (
        "BINDER_NOT_EMPLOYEE"
    )
    # his balance still pays his own bill and his own premium; he records no contributions
    own = await settlement.Settle(bill(father, 1_000), timeout=10)
    assert legs(own) == [(father, OWN, 1_000)]
    await settlement.PayResidentPremium(premium(father, father), timeout=10)
    assert (await get(account, father)).balance_fen == 50_000 - 1_000 - 38_000
    assert (await refused(account.RecordContribution(month_of(father, "2025-04"))))[1] == (
        "NOT_EMPLOYEE"
    )


async def test_a_kept_account_moves_out_or_is_withdrawn_with_its_balance(account):
    # rules A4, A5, A9: the account a former employee keeps pays out like an employee's
    moving, withdrawn = [await open_account(account, n, region="430102") for n in (5_000, 3_000)]
    for pid in (moving, withdrawn):
        await account.ChangeInsuranceType(change(pid, RESIDENT))
    moved = await account.TransferAccount(transfer(moving, "610400"))
    assert (moved.status, moved.balance_fen) == (pb.ACCOUNT_STATUS_TRANSFERRED_OUT, 0)
    newest = (await all_entries(account, moving))[0]
    assert (newest.kind, newest.amount_fen, newest.reference) == (
        pb.ENTRY_KIND_TRANSFER_OUT, -5_000, "610400",
    )  # fmt: skip
    await stop(account, withdrawn, DEATH)
    e = await account.WithdrawBalance(withdrawal(withdrawn))
    assert (e.kind, e.amount_fen, e.balance_after_fen) == (pb.ENTRY_KIND_WITHDRAWAL, -3_000, 0)
    assert (await get(account, withdrawn)).status == pb.ACCOUNT_STATUS_CLOSED


async def test_a_resident_pays_for_no_relative_from_the_moment_his_type_changes(account):
    # rules A9, S4: decided in the payment itself, whether or not his bindings have lapsed yet
    father, wife = await person(account, 1970, 9_000), await person(account, 1972, 0)
    kid = await person(account, 2012, 0, resident=True)
    grants = {who: "B" + rid()[:20] for who in (wife, kid)}
    for who, binding_id in grants.items():
        await account.GrantFamilyAid(pb.GrantFamilyAidRequest(
            binder_id=father, beneficiary_id=who, binding_id=binding_id,
            start_date=days_from_today(0)), timeout=10)  # fmt: skip
    await account.ChangeInsuranceType(change(father, RESIDENT))

    def paying(patient: str, kind: int, amount: int) -> pb.PayFromAccountsRequest:
        return pb.PayFromAccountsRequest(
            payment_id=rid(), kind=kind, patient_id=patient, amount_fen=amount,
            sources=[pb.PaySource(person_id=father, binding_id=grants[patient])],
            on_date=days_from_today(0), premium_year=dt.date.today().year,
        )  # fmt: skip

    settled = await account.PayFromAccounts(paying(wife, pb.ENTRY_KIND_SETTLEMENT, 500))
    assert list(settled.shares) == []  # skipped: the bill goes to cash
    premium = account.PayFromAccounts(paying(kid, pb.ENTRY_KIND_PREMIUM, 3_800))
    assert (await refused(premium))[1] == "NOT_BOUND"
    assert (await get(account, father)).balance_fen == 9_000


async def test_a_resident_who_becomes_employee_gets_an_active_account(account, binding):  # A9
    pid = await person(account, 1985, balance=0, resident=True)
    kid = await person(account, 2010, balance=0, resident=True)
    assert (await refused(credit(account, pid, 100)))[1] == "NO_PERSONAL_ACCOUNT"
    changed = await account.ChangeInsuranceType(change(pid, EMPLOYEE))
    assert (changed.insurance_type, changed.status, changed.balance_fen) == (
        EMPLOYEE, pb.ACCOUNT_STATUS_ACTIVE, 0,
    )  # fmt: skip
    recorded = await account.RecordContribution(month_of(pid, "2025-05"))
    assert recorded.allocation_fen > 0
    made = await binding.CreateBinding(create(pid, kid, CHILD))
    assert made.status == bpb.BINDING_STATUS_ACTIVE


async def test_a_change_to_the_same_type_or_of_a_closed_account(account):  # rule A9
    pid = await open_account(account, 100)
    before = await get(account, pid)
    assert await account.ChangeInsuranceType(change(pid, EMPLOYEE)) == before
    await account.TransferAccount(transfer(pid, "610400"))
    assert (await refused(account.ChangeInsuranceType(change(pid, RESIDENT))))[1] == (
        "ACCOUNT_CLOSED"
    )
    assert (await refused(account.ChangeInsuranceType(change(new_pid(), RESIDENT))))[1] == (
        "ACCOUNT_NOT_FOUND"
    )
