"""Commercial insurance (A3), withdrawal (A4), moving the account (A5)."""

import json

import grpc

from gongji.account.v1 import account_pb2 as pb
from services.account.store import account_key
from tests.integration.accounts import all_entries, get, open_account, pay, rid, stop, withdraw
from tests.support import refused


def purchase(pid: str, amount: int, policy_no: str = "") -> pb.PurchaseCommercialInsuranceRequest:
    return pb.PurchaseCommercialInsuranceRequest(
        person_id=pid, amount_fen=amount, insurer_code="PICC-HN", policy_no=policy_no or rid()[:20],
        request_id=rid(),
    )  # fmt: skip


async def test_commercial_insurance_is_capped_at_40_percent_of_available(account):  # rule A3
    pid = await open_account(account, 10_000)  # limit 4_000
    assert await refused(account.PurchaseCommercialInsurance(purchase(pid, 4_001))) == (
        grpc.StatusCode.FAILED_PRECONDITION, "COMMERCIAL_LIMIT_EXCEEDED",
    )  # fmt: skip
    e = await account.PurchaseCommercialInsurance(purchase(pid, 4_000, "POL-1"))
    assert (e.kind, e.amount_fen, e.balance_after_fen, e.reference) == (
        pb.ENTRY_KIND_COMMERCIAL_INSURANCE, -4_000, 6_000, "PICC-HN:POL-1",
    )  # fmt: skip


async def test_only_a_partner_insurer_sells_from_the_account(account):  # registry, rule A3
    pid = await open_account(account, 10_000)
    for insurer in ("PICC", "ACME-HN"):  # unknown; ACME-HN is not in config/registry.toml
        request = purchase(pid, 100)
        request.insurer_code = insurer
        assert await refused(account.PurchaseCommercialInsurance(request)) == (
            grpc.StatusCode.FAILED_PRECONDITION, "INSURER_NOT_PARTNER",
        )  # fmt: skip
    assert (await get(account, pid)).balance_fen == 10_000
    request = purchase(pid, 100)
    request.insurer_code = "CPIC-HN"
    assert (await account.PurchaseCommercialInsurance(request)).amount_fen == -100


async def test_the_limit_rounds_down_to_the_fen(account):  # rule A3
    pid = await open_account(account, 1_001)  # 40% = 400.4
    assert (await refused(account.PurchaseCommercialInsurance(purchase(pid, 401))))[1] == (
        "COMMERCIAL_LIMIT_EXCEEDED"
    )
    await account.PurchaseCommercialInsurance(purchase(pid, 400))


async def test_a_cancelled_policy_is_refunded_to_its_account(account):  # rule A3
    pid = await open_account(account, 1_000)
    await account.PurchaseCommercialInsurance(purchase(pid, 300, "POL-2"))
    cancel = pb.CancelCommercialInsuranceRequest(person_id=pid, policy_no="POL-2", request_id=rid())
    e = await account.CancelCommercialInsurance(cancel)
    assert (e.kind, e.amount_fen, e.balance_after_fen) == (pb.ENTRY_KIND_REFUND, 300, 1_000)
    assert await account.CancelCommercialInsurance(cancel) == e
    cancel.request_id = rid()
    assert (await refused(account.CancelCommercialInsurance(cancel)))[1] == "ALREADY_CANCELLED"
    cancel.policy_no = "POL-none"
    assert await refused(account.CancelCommercialInsurance(cancel)) == (
        grpc.StatusCode.NOT_FOUND, "POLICY_NOT_FOUND",
    )  # fmt: skip
    assert (await get(account, pid)).balance_fen == 1_000


async def test_a_policy_number_is_bought_once(account):
    pid = await open_account(account, 10_000)
    await account.PurchaseCommercialInsurance(purchase(pid, 100, "POL-3"))
    assert (await refused(account.PurchaseCommercialInsurance(purchase(pid, 100, "POL-3"))))[1] == (
        "POLICY_NO_IN_USE"
    )


async def test_suspended_holders_buy_no_insurance(account):  # rule A6
    pid = await open_account(account, 10_000)
    await account.SuspendAccount(
        pb.SuspendAccountRequest(person_id=pid, reason="x", request_id=rid())
    )
    assert (await refused(account.PurchaseCommercialInsurance(purchase(pid, 1))))[1] == (
        "ACCOUNT_SUSPENDED"
    )


def withdrawal(pid: str, reason: int = pb.WITHDRAWAL_REASON_DEATH) -> pb.WithdrawBalanceRequest:
    return pb.WithdrawBalanceRequest(person_id=pid, reason=reason, payee="heirs", request_id=rid())


async def test_withdrawal_pays_out_everything_and_closes(account):  # rule A4
    pid = await open_account(account, 8_800)
    e = await withdraw(account, pid, pb.WITHDRAWAL_REASON_ABANDON_EMPLOYEE_INSURANCE)
    assert (e.kind, e.amount_fen, e.balance_after_fen) == (pb.ENTRY_KIND_WITHDRAWAL, -8_800, 0)
    a = await get(account, pid)
    assert (a.status, a.balance_fen) == (pb.ACCOUNT_STATUS_CLOSED, 0)
    assert a.stopped_reason == pb.STOP_REASON_ABANDON_EMPLOYEE_INSURANCE
    assert (await refused(account.WithdrawBalance(withdrawal(pid))))[1] == "ACCOUNT_CLOSED"


async def test_withdrawal_without_an_allowed_reason_is_refused(account):  # rule A4
    pid = await open_account(account, 100)
    await stop(account, pid, pb.STOP_REASON_DEATH)
    assert await refused(account.WithdrawBalance(withdrawal(pid, 0))) == (
        grpc.StatusCode.FAILED_PRECONDITION, "WITHDRAWAL_NOT_ALLOWED",
    )  # fmt: skip
    assert (await get(account, pid)).status == pb.ACCOUNT_STATUS_ACTIVE


async def test_a_suspended_account_may_still_be_withdrawn(account):  # API state table
    pid = await open_account(account, 100)
    await account.SuspendAccount(
        pb.SuspendAccountRequest(person_id=pid, reason="x", request_id=rid())
    )
    assert (await withdraw(account, pid)).amount_fen == -100


def transfer(pid: str, region: str) -> pb.TransferAccountRequest:
    return pb.TransferAccountRequest(person_id=pid, to_region_code=region, request_id=rid())


async def test_a_move_inside_the_province_keeps_the_balance(account):  # rule A5
    pid = await open_account(account, 5_000, region="430102")
    a = await account.TransferAccount(transfer(pid, "430600"))
    assert (a.region_code, a.balance_fen, a.status) == ("430600", 5_000, pb.ACCOUNT_STATUS_ACTIVE)
    assert (await refused(account.TransferAccount(transfer(pid, "430600"))))[1] == (
        "INVALID_REGION_CODE"
    )


async def test_a_move_to_another_province_transfers_the_balance_out(account):  # rule A5
    pid = await open_account(account, 5_000, region="430102")
    a = await account.TransferAccount(transfer(pid, "610400"))
    assert (a.status, a.balance_fen) == (pb.ACCOUNT_STATUS_TRANSFERRED_OUT, 0)
    newest = (await all_entries(account, pid))[0]
    assert (newest.kind, newest.amount_fen, newest.reference) == (
        pb.ENTRY_KIND_TRANSFER_OUT, -5_000, "610400",
    )  # fmt: skip
    assert (await refused(pay(account, pid, 1)))[1] == "ACCOUNT_CLOSED"
    assert (await refused(account.TransferAccount(transfer(pid, "430102"))))[1] == "ACCOUNT_CLOSED"


async def test_a_resident_moves_without_money(account):  # rule A5
    pid = await open_account(account, resident=True)
    a = await account.TransferAccount(transfer(pid, "610400"))
    assert a.status == pb.ACCOUNT_STATUS_TRANSFERRED_OUT
    assert await all_entries(account, pid) == []


async def test_a_policy_cancelled_after_closure_is_refunded_then_paid_on(account):  # A3, S9
    pid = await open_account(account, 1_000)
    await account.PurchaseCommercialInsurance(purchase(pid, 400, "POL-late"))
    await withdraw(account, pid)
    cancel = pb.CancelCommercialInsuranceRequest(person_id=pid, policy_no="POL-late",
                                                 request_id=rid())  # fmt: skip
    refund = await account.CancelCommercialInsurance(cancel)
    assert (refund.kind, refund.amount_fen, refund.balance_after_fen) == (
        pb.ENTRY_KIND_REFUND, 400, 400,
    )  # fmt: skip
    newest = (await all_entries(account, pid))[0]
    assert (newest.kind, newest.amount_fen, newest.reference) == (
        pb.ENTRY_KIND_WITHDRAWAL, -400, "heirs",
    )  # fmt: skip
    assert (await get(account, pid)).balance_fen == 0


async def test_an_empty_account_withdraws_and_moves_with_an_entry_of_0_fen(account):  # A4, A5
    emptied = await open_account(account)
    e = await withdraw(account, emptied, pb.WITHDRAWAL_REASON_DEATH)
    assert (e.kind, e.amount_fen, e.balance_after_fen) == (pb.ENTRY_KIND_WITHDRAWAL, 0, 0)
    assert (await get(account, emptied)).status == pb.ACCOUNT_STATUS_CLOSED
    moved = await open_account(account, region="430102")
    a = await account.TransferAccount(transfer(moved, "610400"))
    assert (a.status, a.balance_fen) == (pb.ACCOUNT_STATUS_TRANSFERRED_OUT, 0)
    newest = (await all_entries(account, moved))[0]
    assert (newest.kind, newest.amount_fen) == (pb.ENTRY_KIND_TRANSFER_OUT, 0)


async def test_refunds_after_an_empty_withdrawal_credit_back_exactly_what_was_debited(account):
    # rules A4, S9: the refund finds the very entry it refunds, then pays it on to the heirs
    pid = await open_account(account, 100)
    paid = await pay(account, pid, 100)
    await withdraw(account, pid, pb.WITHDRAWAL_REASON_DEATH)
    await account.CancelPayment(pb.CancelPaymentRequest(
        payment_id=paid.payment_id, reason="wrong", cancel_request_id=rid()))  # fmt: skip
    entries = await all_entries(account, pid)
    assert [e.amount_fen for e in entries[:2]] == [-100, 100]  # paid on to the heirs, then back
    assert entries[0].kind == pb.ENTRY_KIND_WITHDRAWAL
    assert (await get(account, pid)).balance_fen == sum(e.amount_fen for e in entries) == 0


async def test_several_purchases_in_a_year_together_stay_within_40_percent(account):  # rule A3
    """The decided reading: S + x <= 40% of (available + S), S this year's purchases not
    cancelled. Available 10,000: buy 3,000, then at most 1,000 more (3,000 + 1,000 = 40% of
    7,000 + 3,000)."""
    pid = await open_account(account, 10_000)
    await account.PurchaseCommercialInsurance(purchase(pid, 3_000, "POL-Y1"))
    code, reason = await refused(account.PurchaseCommercialInsurance(purchase(pid, 1_001)))
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "COMMERCIAL_LIMIT_EXCEEDED")
    await account.PurchaseCommercialInsurance(purchase(pid, 1_000, "POL-Y2"))
    assert (await refused(account.PurchaseCommercialInsurance(purchase(pid, 1))))[1] == (
        "COMMERCIAL_LIMIT_EXCEEDED"
    )
    assert (await get(account, pid)).balance_fen == 6_000  # 40% spent, not 3 × 40% of what was left


async def test_a_cancelled_policy_frees_its_share_of_the_year(account):  # rule A3
    pid = await open_account(account, 10_000)
    await account.PurchaseCommercialInsurance(purchase(pid, 4_000, "POL-C1"))
    assert (await refused(account.PurchaseCommercialInsurance(purchase(pid, 1))))[1] == (
        "COMMERCIAL_LIMIT_EXCEEDED"
    )
    cancel = pb.CancelCommercialInsuranceRequest(
        person_id=pid, policy_no="POL-C1", request_id=rid()
    )
    await account.CancelCommercialInsurance(cancel)
    e = await account.PurchaseCommercialInsurance(purchase(pid, 4_000, "POL-C2"))
    assert e.balance_after_fen == 6_000


async def test_a_suspended_account_is_refused_before_the_insurer_is_judged(account):  # A3, A6
    pid = await open_account(account, 10_000)
    await account.SuspendAccount(
        pb.SuspendAccountRequest(person_id=pid, reason="x", request_id=rid())
    )
    request = purchase(pid, 100)
    request.insurer_code = "ACME-HN"  # not a partner either
    assert (await refused(account.PurchaseCommercialInsurance(request)))[1] == "ACCOUNT_SUSPENDED"


async def test_a_policy_records_whether_it_is_health_or_accident_insurance(account, redis):
    """Rule A3: 商业健康保险和意外伤害保险; unset is health, an unknown kind is refused."""
    pid = await open_account(account, 10_000)
    accident = purchase(pid, 100, "POL-K1")
    accident.kind = pb.COMMERCIAL_INSURANCE_KIND_ACCIDENT
    await account.PurchaseCommercialInsurance(accident)
    await account.PurchaseCommercialInsurance(purchase(pid, 100, "POL-K2"))
    policies = f"{account_key(pid)}:policies"
    kinds = {no: json.loads(await redis.hget(policies, no))["kind"] for no in ("POL-K1", "POL-K2")}
    assert kinds == {"POL-K1": pb.COMMERCIAL_INSURANCE_KIND_ACCIDENT,
                     "POL-K2": pb.COMMERCIAL_INSURANCE_KIND_HEALTH}  # fmt: skip
    unknown = purchase(pid, 100, "POL-K3")
    unknown.kind = 7  # type: ignore[assignment]
    assert await refused(account.PurchaseCommercialInsurance(unknown)) == (
        grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT",
    )  # fmt: skip


async def test_an_account_closed_again_leaves_nothing_in_it(account):  # rules A4, A5, S9
    # moved out, opened again as a resident's (no personal account), then refunded for his
    # employee years: a move out again pays that out too, so no closed account holds money
    pid = await open_account(account, 1_000)
    await account.PurchaseCommercialInsurance(purchase(pid, 400, "POL-twice"))
    await account.TransferAccount(transfer(pid, "610400"))
    await open_account(account, resident=True, pid=pid)
    cancel = pb.CancelCommercialInsuranceRequest(person_id=pid, policy_no="POL-twice",
                                                 request_id=rid())  # fmt: skip
    refund = await account.CancelCommercialInsurance(cancel)
    assert (refund.amount_fen, refund.balance_after_fen) == (400, 400)
    a = await account.TransferAccount(transfer(pid, "610400"))
    assert (a.status, a.balance_fen) == (pb.ACCOUNT_STATUS_TRANSFERRED_OUT, 0)
    newest = (await all_entries(account, pid))[0]
    assert (newest.kind, newest.amount_fen) == (pb.ENTRY_KIND_TRANSFER_OUT, -400)
