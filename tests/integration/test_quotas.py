"""Aid quotas across provinces (docs/RULES.md N1-N5, API.md "Aid quotas across provinces"): a son
in Changsha sets money aside for his father in Xianyang; the father's bills anywhere draw on it,
after his own account and before his payers; the money stays the son's, set aside."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc
import orjson
import pytest

from gongji.account.v1 import account_pb2 as pb
from gongji.binding.v1 import binding_pb2 as bpb
from gongji.common.v1 import common_pb2
from gongji.settlement.v1 import settlement_pb2 as spb
from services.account.client import AccountClient
from services.audit import audit, render
from services.binding.consent import Consent
from services.binding.lifecycle import Lifecycle
from services.binding.quotas import Quotas
from services.binding.store import BindingStore, Keys
from services.common import policy
from services.common.clock import SystemClock
from tests.integration.accounts import get, rid, stop
from tests.integration.bindings import CHILD, PARENT, SPOUSE, create, person
from tests.integration.test_settlement import HOSPITAL, bill, legs
from tests.integration.watching import events, watch
from tests.support import POLICY_FILE, as_, channel, eventually, footprint, refused

XIANYANG = "610402"
XIANYANG_HOSPITAL = "H61040000001"
OWN, AID, QUOTA = spb.LEG_KIND_OWN_ACCOUNT, spb.LEG_KIND_FAMILY_AID, spb.LEG_KIND_QUOTA
ACTIVE, ENDED = bpb.QUOTA_STATUS_ACTIVE, bpb.QUOTA_STATUS_ENDED
PENDING = bpb.QUOTA_STATUS_PENDING_CONSENT


def grant(funder: str, relative: str, amount: int, relationship: int = PARENT,
          request_id: str = "") -> bpb.GrantQuotaRequest:  # fmt: skip
    return bpb.GrantQuotaRequest(
        funder_id=funder, relative_id=relative, relationship=relationship, amount_fen=amount,
        request_id=request_id or rid(),
    )  # fmt: skip


def end(quota_id: str) -> bpb.EndQuotaRequest:
    return bpb.EndQuotaRequest(quota_id=quota_id, request_id=rid())


def change(quota_id: str, amount: int) -> bpb.ChangeQuotaRequest:
    return bpb.ChangeQuotaRequest(quota_id=quota_id, amount_fen=amount, request_id=rid())


async def quota_of(binding: Any, quota_id: str) -> bpb.Quota:
    return await binding.GetQuota(bpb.GetQuotaRequest(quota_id=quota_id), timeout=10)


async def money(account: Any, pid: str) -> tuple[int, int, int]:
    """balance, set aside, available."""
    a = await get(account, pid)
    return a.balance_fen, a.quota_reserved_fen, a.available_fen


async def changsha_son_xianyang_father(account: Any, son_balance: int = 100_000,
                                       father_balance: int = 0) -> tuple[str, str]:  # fmt: skip
    son = await person(account, 1985, son_balance)
    father = await person(account, 1955, father_balance, region=XIANYANG)
    return son, father


async def test_a_grant_sets_the_amount_aside_at_once(account, binding):  # rules N1, N2
    son, father = await changsha_son_xianyang_father(account)
    q = await binding.GrantQuota(grant(son, father, 30_000), timeout=10)
    assert (q.funder_id, q.relative_id, q.status) == (son, father, ACTIVE)
    assert (q.granted_fen, q.used_fen, q.remaining_fen) == (30_000, 0, 30_000)
    assert q.quota_id[1:5] == "4361"  # both provinces
    assert await money(account, son) == (100_000, 30_000, 70_000)
    assert await quota_of(binding, q.quota_id) == q
    for side in ({"funder_id": son}, {"relative_id": father}):
        listed = await binding.ListQuotas(bpb.ListQuotasRequest(**side), timeout=10)
        assert [x.quota_id for x in listed.quotas] == [q.quota_id]
    retry = grant(son, father, 30_000)
    retry.request_id = "same-" + q.quota_id
    first = await refused(binding.GrantQuota(retry, timeout=10))
    assert first[1] == "QUOTA_EXISTS"  # one ACTIVE quota per pair


async def test_grant_refusals_come_in_api_order_and_change_nothing(
    account, binding, raw
):  # rule N1, N2: API.md's order, the first failure wins
    son, father = await changsha_son_xianyang_father(account, 10_000)
    resident = await person(account, 1980, 0, resident=True)
    younger = await person(account, 1999, 0, region=XIANYANG)
    closed = await person(account, 1950, 0, region=XIANYANG)
    await stop(account, closed)
    await account.WithdrawBalance(
        pb.WithdrawBalanceRequest(
            person_id=closed, reason=pb.WITHDRAWAL_REASON_DEATH, payee="heir", request_id=rid()
        )
    )
    suspended = await person(account, 1970)
    await account.SuspendAccount(pb.SuspendAccountRequest(person_id=suspended, reason="x",
                                                          request_id=rid()))  # fmt: skip
    cases = [
        (grant(son, father, 100, relationship=99), "INVALID_ARGUMENT"),
        (grant(son, father, 0), "INVALID_AMOUNT"),
        (grant(son, son, 100), "SELF_BINDING"),
        (grant("110101199001011237", father, 100), "ACCOUNT_NOT_FOUND"),
        (grant(resident, father, 100), "BINDER_NOT_EMPLOYEE"),
        (grant(suspended, father, 100), "ACCOUNT_SUSPENDED"),
        (grant(son, closed, 100), "BENEFICIARY_NOT_INSURED"),
        (grant(son, father, 100, relationship=common_pb2.RELATIONSHIP_UNSPECIFIED),
         "RELATIONSHIP_NOT_ALLOWED"),
        (grant(son, younger, 100, relationship=PARENT), "IMPLAUSIBLE_RELATIONSHIP"),
        (grant(son, father, 10_001), "INSUFFICIENT_FUNDS"),
    ]  # fmt: skip
    for request, reason in cases:
        before = await footprint(raw, request, son, father)
        assert (await refused(binding.GrantQuota(request, timeout=10)))[1] == reason, reason
        assert await footprint(raw, request, son, father) == before, reason
    await binding.GrantQuota(grant(son, father, 4_000), timeout=10)
    assert (await refused(binding.GrantQuota(grant(son, father, 100), timeout=10)))[1] == (
        "QUOTA_EXISTS"
    )
    assert await money(account, son) == (10_000, 4_000, 6_000)


async def test_a_funder_holds_at_most_max_quotas(account, binding):  # rule N1: max_quotas
    son = await person(account, 1985, 100_000)
    relatives = [await person(account, 1990 + i, 0, region=XIANYANG) for i in range(11)]
    for r in relatives[:10]:
        await binding.GrantQuota(grant(son, r, 100, relationship=SPOUSE), timeout=10)
    refusal = await refused(binding.GrantQuota(grant(son, relatives[10], 100, SPOUSE)))
    assert refusal[1] == "QUOTA_LIMIT_REACHED"
    assert (await money(account, son))[1] == 1_000


async def test_the_fathers_bill_draws_own_then_quotas_oldest_first_then_payers_then_cash(
    account, binding, settlement
):  # rules N3, S2, B10
    son, father = await changsha_son_xianyang_father(account)
    daughter = await person(account, 1988, 50_000)
    wife = await person(account, 1957, 3_000, region=XIANYANG)
    await account.Credit(pb.CreditRequest(person_id=father, amount_fen=1_000,
                                          kind=pb.CREDIT_KIND_MONTHLY_ALLOCATION, memo="m",
                                          request_id=rid()))  # fmt: skip
    first = await binding.GrantQuota(grant(son, father, 2_000), timeout=10)
    second = await binding.GrantQuota(grant(daughter, father, 1_500), timeout=10)
    await binding.CreateBinding(create(wife, father, SPOUSE), timeout=10)
    quote = await settlement.PreSettle(bill(father, 8_000, institution_id=XIANYANG_HOSPITAL))
    s = await settlement.Settle(bill(father, 8_000, institution_id=XIANYANG_HOSPITAL))
    expected = [(father, OWN, 1_000), (son, QUOTA, 2_000), (daughter, QUOTA, 1_500),
                (wife, AID, 3_000)]  # fmt: skip
    assert legs(quote) == legs(s) == expected
    assert [leg.quota_id for leg in s.legs] == ["", first.quota_id, second.quota_id, ""]
    assert (s.acct_pay_fen, s.acct_mulaid_pay_fen, s.cash_pay_fen) == (1_000, 6_500, 500)
    assert await money(account, son) == (98_000, 0, 98_000)  # the quota used up, nothing more
    assert (await quota_of(binding, first.quota_id)).used_fen == 2_000
    by_payer = await settlement.ListSettlements(spb.ListSettlementsRequest(payer_id=son))
    assert [x.settlement_id for x in by_payer.settlements] == [s.settlement_id]  # rule S13


async def test_a_funder_pays_one_bill_from_his_quota_and_from_his_account_both(
    account, binding, settlement, redis_url
):  # rules N3, B10, invariant 2
    wife = await person(account, 1957, 3_000, region=XIANYANG)
    father = await person(account, 1955, 0, region=XIANYANG)
    q = await binding.GrantQuota(grant(wife, father, 1_000, relationship=SPOUSE), timeout=10)
    await binding.CreateBinding(create(wife, father, SPOUSE), timeout=10)
    s = await settlement.Settle(bill(father, 3_500, institution_id=XIANYANG_HOSPITAL))
    assert legs(s) == [(wife, QUOTA, 1_000), (wife, AID, 2_000)]
    assert [leg.quota_id for leg in s.legs] == [q.quota_id, ""]
    # two legs of one payer, from two sources: the audit sees nothing wrong in the record
    report = await audit(redis_url, policy=policy.load(POLICY_FILE))
    assert not [v for v in report.violations if s.settlement_id in v.subject], render(report)


async def test_the_funder_never_spends_what_he_set_aside(account, binding, settlement):
    # rule N2: his bills, his in-province family aid and commercial insurance see the available
    son, father = await changsha_son_xianyang_father(account, 10_000)
    wife = await person(account, 1986, 0)
    await binding.CreateBinding(create(son, wife, SPOUSE), timeout=10)
    await binding.GrantQuota(grant(son, father, 7_000), timeout=10)
    own = await settlement.Settle(bill(son, 2_000), timeout=10)
    aid = await settlement.Settle(bill(wife, 5_000), timeout=10)
    assert legs(own) == [(son, OWN, 2_000)]
    assert legs(aid) == [(son, AID, 1_000)] and aid.cash_pay_fen == 4_000
    assert await money(account, son) == (7_000, 7_000, 0)
    buy = pb.PurchaseCommercialInsuranceRequest(
        person_id=son,
        amount_fen=1,
        insurer_code="PICC-HN",
        policy_no="p-" + rid()[:8],
        request_id=rid(),
    )
    assert (await refused(account.PurchaseCommercialInsurance(buy)))[1] == (
        "COMMERCIAL_LIMIT_EXCEEDED"
    )
    s = await settlement.Settle(bill(father, 9_000, institution_id=XIANYANG_HOSPITAL))
    assert legs(s) == [(son, QUOTA, 7_000)] and s.cash_pay_fen == 2_000
    assert await money(account, son) == (0, 0, 0)


async def test_a_grant_racing_the_funders_bills_never_lets_him_spend_it(
    account, binding, settlement
):  # rule N2 under concurrency: nothing set aside is ever spent
    son, father = await changsha_son_xianyang_father(account, 10_000)
    bills = [settlement.Settle(bill(son, 1_000), timeout=10) for _ in range(8)]
    granted = binding.GrantQuota(grant(son, father, 6_000), timeout=10)
    done = await asyncio.gather(granted, *bills, return_exceptions=True)
    spent = sum(s.acct_pay_fen for s in done[1:] if isinstance(s, spb.Settlement))
    balance, reserved, available = await money(account, son)
    if isinstance(done[0], bpb.Quota):
        assert reserved == 6_000 and spent <= 4_000
    else:
        assert reserved == 0 and done[0].code() == grpc.StatusCode.FAILED_PRECONDITION
    assert balance == 10_000 - spent and available == balance - reserved >= 0
    s = await settlement.Settle(bill(father, 10_000, institution_id=XIANYANG_HOSPITAL))
    assert s.acct_mulaid_pay_fen == reserved  # what was set aside is all there


async def test_cancel_gives_a_quota_leg_back_to_its_quota_while_active(
    account, binding, settlement
):  # rules N3, S9
    son, father = await changsha_son_xianyang_father(account, 10_000)
    q = await binding.GrantQuota(grant(son, father, 5_000), timeout=10)
    s1 = await settlement.Settle(bill(father, 2_000, institution_id=XIANYANG_HOSPITAL))
    s2 = await settlement.Settle(bill(father, 1_000, institution_id=XIANYANG_HOSPITAL))
    assert (await quota_of(binding, q.quota_id)).used_fen == 3_000
    await settlement.CancelSettlement(
        spb.CancelSettlementRequest(settlement_id=s1.settlement_id, reason="退费", request_id=rid())
    )
    back = await quota_of(binding, q.quota_id)
    assert (back.used_fen, back.remaining_fen) == (1_000, 4_000)
    assert await money(account, son) == (9_000, 4_000, 5_000)
    ended = await binding.EndQuota(end(q.quota_id), timeout=10)
    assert (ended.status, ended.end_reason) == (ENDED, bpb.QUOTA_END_REASON_BY_FUNDER)
    assert await money(account, son) == (9_000, 0, 9_000)
    await settlement.CancelSettlement(
        spb.CancelSettlementRequest(settlement_id=s2.settlement_id, reason="退费", request_id=rid())
    )
    assert (await quota_of(binding, q.quota_id)).used_fen == 1_000  # ended: not back to it
    assert await money(account, son) == (10_000, 0, 10_000)  # but to his available balance


async def test_change_and_end_follow_the_rules(account, binding, settlement, addresses):
    # rule N2
    son, father = await changsha_son_xianyang_father(account, 10_000)
    q = await binding.GrantQuota(grant(son, father, 5_000), timeout=10)
    await settlement.Settle(bill(father, 3_000, institution_id=XIANYANG_HOSPITAL))
    assert (await refused(binding.ChangeQuota(change(q.quota_id, 2_999))))[1] == "QUOTA_BELOW_USED"
    assert (await refused(binding.ChangeQuota(change(q.quota_id, 15_001))))[1] == (
        "INSUFFICIENT_FUNDS"
    )
    raised = await binding.ChangeQuota(change(q.quota_id, 8_000), timeout=10)
    assert (raised.granted_fen, raised.remaining_fen) == (8_000, 5_000)
    assert await money(account, son) == (7_000, 5_000, 2_000)
    await account.SuspendAccount(pb.SuspendAccountRequest(person_id=son, reason="核查",
                                                          request_id=rid()))  # fmt: skip
    assert (await refused(binding.ChangeQuota(change(q.quota_id, 9_000))))[1] == (
        "ACCOUNT_SUSPENDED"
    )
    s = await settlement.Settle(bill(father, 1_000, institution_id=XIANYANG_HOSPITAL))
    assert s.cash_pay_fen == 1_000  # a suspended funder is skipped (S4)
    lowered = await binding.ChangeQuota(change(q.quota_id, 4_000), timeout=10)
    assert lowered.remaining_fen == 1_000
    by_relative = await as_(addresses, "binding", "citizen", father, "EndQuota", end(q.quota_id))
    assert (by_relative.status, by_relative.end_reason) == (ENDED, bpb.QUOTA_END_REASON_BY_RELATIVE)
    assert await binding.EndQuota(end(q.quota_id), timeout=10) == by_relative  # unchanged
    assert (await refused(binding.ChangeQuota(change(q.quota_id, 4_000))))[1] == "QUOTA_ENDED"
    assert await money(account, son) == (7_000, 0, 7_000)


async def test_the_funders_own_changes_end_his_quotas_before_they_return(
    account, binding
):  # rule N4, funder side: in the same call
    cases = [
        ("stop", bpb.QUOTA_END_REASON_INSURANCE_ENDED),
        ("move", bpb.QUOTA_END_REASON_MOVED),
        ("resident", bpb.QUOTA_END_REASON_FUNDER_NOT_EMPLOYEE),
    ]
    for change_, reason in cases:
        son, father = await changsha_son_xianyang_father(account, 10_000)
        q = await binding.GrantQuota(grant(son, father, 6_000), timeout=10)
        if change_ == "stop":
            await stop(account, son, pb.STOP_REASON_ABANDON_EMPLOYEE_INSURANCE)
        elif change_ == "move":
            await account.TransferAccount(
                pb.TransferAccountRequest(person_id=son, to_region_code="430104", request_id=rid())
            )
        else:
            await account.ChangeInsuranceType(
                pb.ChangeInsuranceTypeRequest(
                    person_id=son,
                    insurance_type=common_pb2.INSURANCE_TYPE_RESIDENT,
                    request_id=rid(),
                )
            )
        found = await quota_of(binding, q.quota_id)
        assert (found.status, found.end_reason) == (ENDED, reason), change_
        assert await money(account, son) == (10_000, 0, 10_000), change_


async def test_a_withdrawal_pays_out_what_was_set_aside(account, binding):  # rules N4, A4
    son, father = await changsha_son_xianyang_father(account, 10_000)
    q = await binding.GrantQuota(grant(son, father, 6_000), timeout=10)
    await stop(account, son, pb.STOP_REASON_EMIGRATION)
    paid = await account.WithdrawBalance(
        pb.WithdrawBalanceRequest(
            person_id=son, reason=pb.WITHDRAWAL_REASON_EMIGRATION, payee="本人", request_id=rid()
        )
    )
    assert paid.amount_fen == -10_000
    assert (await quota_of(binding, q.quota_id)).status == ENDED


async def test_the_relatives_stop_ends_his_quotas_within_a_second(
    account, binding, settlement
):  # rule N4, relative side: through the event stream, exactly once
    son, father = await changsha_son_xianyang_father(account, 10_000)
    q = await binding.GrantQuota(grant(son, father, 6_000), timeout=10)
    started = time.monotonic()
    await stop(account, father)

    async def ended() -> bool:
        return (await quota_of(binding, q.quota_id)).status == ENDED

    await eventually(ended, 5, "the quota ends with the relative's insurance")
    assert time.monotonic() - started < 2.0
    found = await quota_of(binding, q.quota_id)
    assert found.end_reason == bpb.QUOTA_END_REASON_INSURANCE_ENDED
    assert await money(account, son) == (10_000, 0, 10_000)
    relatives = await binding.ListQuotas(bpb.ListQuotasRequest(relative_id=father))
    assert not relatives.quotas  # ended ones only with include_ended
    kept = await binding.ListQuotas(bpb.ListQuotasRequest(relative_id=father, include_ended=True))
    assert [x.quota_id for x in kept.quotas] == [q.quota_id]


async def test_a_late_event_ends_nothing_granted_after_it(account, binding):
    # rule N4: replayed and old events end nothing that began after them
    son, father = await changsha_son_xianyang_father(account, 10_000)
    await account.TransferAccount(
        pb.TransferAccountRequest(person_id=father, to_region_code="610404", request_id=rid())
    )
    await asyncio.sleep(0.2)
    q = await binding.GrantQuota(grant(son, father, 1_000), timeout=10)
    await asyncio.sleep(1.5)  # the move's event was handled long before
    assert (await quota_of(binding, q.quota_id)).status == ACTIVE


async def test_a_long_term_care_premium_is_paid_from_the_quota_once_a_year(
    account, binding, settlement, redis_url
):  # rule N5, invariant 2
    son, father = await changsha_son_xianyang_father(account, 10_000)
    q = await binding.GrantQuota(grant(son, father, 5_000), timeout=10)
    year = dt.date.today().year
    ltc = spb.PREMIUM_KIND_LONG_TERM_CARE

    def premium(amount: int) -> spb.PayResidentPremiumRequest:
        return spb.PayResidentPremiumRequest(
            payer_id=son,
            beneficiary_id=father,
            year=year,
            amount_fen=amount,
            request_id=rid(),
            kind=ltc,
        )

    paid = await settlement.PayResidentPremium(premium(3_000), timeout=10)
    assert (paid.quota_id, paid.kind) == (q.quota_id, ltc)
    assert (await quota_of(binding, q.quota_id)).used_fen == 3_000
    assert (await refused(settlement.PayResidentPremium(premium(1_000))))[1] == (
        "PREMIUM_ALREADY_PAID"
    )
    resident_kind = spb.PayResidentPremiumRequest(
        payer_id=son, beneficiary_id=father, year=year, amount_fen=1_000, request_id=rid()
    )
    assert (await refused(settlement.PayResidentPremium(resident_kind)))[1] == (
        "BENEFICIARY_NOT_RESIDENT"  # he is an employee: only long-term care
    )
    assert await money(account, son) == (7_000, 2_000, 5_000)
    # the audit finds the payment named by its year's long-term-care mark
    report = await audit(redis_url, policy=policy.load(POLICY_FILE))
    assert not [v for v in report.violations if paid.payment_id in v.subject], render(report)


async def test_a_premium_the_quota_does_not_cover_takes_the_binding_path(
    account, binding, settlement
):  # rules N5, A2
    parent = await person(account, 1970, 50_000)
    kid = await person(account, 2008, 0, resident=True)
    q = await binding.GrantQuota(grant(parent, kid, 1_000, relationship=CHILD), timeout=10)
    await binding.CreateBinding(create(parent, kid, CHILD), timeout=10)
    request = spb.PayResidentPremiumRequest(payer_id=parent, beneficiary_id=kid,
                                            year=dt.date.today().year, amount_fen=38_000,
                                            request_id=rid())  # fmt: skip
    paid = await settlement.PayResidentPremium(request, timeout=10)
    assert paid.quota_id == "" and paid.kind == spb.PREMIUM_KIND_RESIDENT_MEDICAL
    assert (await quota_of(binding, q.quota_id)).used_fen == 0
    assert await money(account, parent) == (12_000, 1_000, 11_000)


def _row(statement: spb.ClearingStatement, funder: str, institution: str) -> tuple[int, int]:
    for r in statement.rows:
        if (r.funder_province, r.institution_province) == (funder, institution):
            return r.legs, r.amount_fen
    return 0, 0


async def _statement(settlement: Any, month: str) -> spb.ClearingStatement:
    request = spb.GetClearingStatementRequest(month=month)
    return await settlement.GetClearingStatement(request, timeout=10)


async def _ours(settlement: Any, institution: str, date: str) -> spb.Reconciliation:
    request = spb.ReconcileDayRequest(institution_id=institution, date=date)
    return await settlement.ReconcileDay(request, timeout=10)


def _today() -> dt.date:
    return (dt.datetime.now(dt.UTC) + dt.timedelta(hours=8)).date()


async def test_clearing_sums_quota_legs_across_provinces_net_of_refunds(
    account, binding, settlement
):  # rule N6
    son, father = await changsha_son_xianyang_father(account, 10_000)
    await binding.GrantQuota(grant(son, father, 9_000), timeout=10)
    month = f"{_today():%Y-%m}"
    before = await _statement(settlement, month)
    across = await settlement.Settle(bill(father, 3_000, institution_id=XIANYANG_HOSPITAL))
    at_home = await settlement.Settle(bill(father, 2_000))  # Changsha: the funder's province
    refunded = await settlement.Settle(bill(father, 1_000, institution_id=XIANYANG_HOSPITAL))
    await settlement.CancelSettlement(
        spb.CancelSettlementRequest(
            settlement_id=refunded.settlement_id, reason="退费", request_id=rid()
        )
    )
    after = await _statement(settlement, month)
    assert legs(at_home) == [(son, QUOTA, 2_000)] and legs(across) == [(son, QUOTA, 3_000)]
    was, now = _row(before, "43", "61"), _row(after, "43", "61")
    assert (now[0] - was[0], now[1] - was[1]) == (1, 3_000)  # +2 legs -1 refund; at home: none
    assert _row(after, "43", "43") == (0, 0)
    assert not after.final and [
        (r.funder_province, r.institution_province) for r in after.rows
    ] == (sorted((r.funder_province, r.institution_province) for r in after.rows))
    later = f"{_today().year + 1}-01"
    assert (
        await refused(settlement.GetClearingStatement(spb.GetClearingStatementRequest(month=later)))
    )[1] == "INVALID_DATE"


async def test_reconciliation_counts_the_institutions_day_field_by_field(
    account, binding, settlement, addresses
):  # rule N7
    son, father = await changsha_son_xianyang_father(account, 10_000)
    await binding.GrantQuota(grant(son, father, 9_000), timeout=10)
    today = _today().isoformat()
    before = (await _ours(settlement, XIANYANG_HOSPITAL, today)).ours
    s = await settlement.Settle(bill(father, 4_000, fund=6_000, institution_id=XIANYANG_HOSPITAL))
    gone = await settlement.Settle(bill(father, 1_000, fund=500, institution_id=XIANYANG_HOSPITAL))
    await settlement.CancelSettlement(
        spb.CancelSettlementRequest(
            settlement_id=gone.settlement_id, reason="退费", request_id=rid()
        )
    )
    day = await _ours(settlement, XIANYANG_HOSPITAL, today)
    ours = day.ours
    assert (ours.settlements - before.settlements, ours.cancellations - before.cancellations) == (
        2,
        1,
    )
    assert ours.medfee_total_fen - before.medfee_total_fen == 10_000  # +10,000 +1,500 -1,500
    assert ours.fund_pay_fen - before.fund_pay_fen == 6_000
    assert ours.acct_mulaid_pay_fen - before.acct_mulaid_pay_fen == s.acct_mulaid_pay_fen == 4_000
    assert ours.cash_pay_fen - before.cash_pay_fen == 0 and not day.final and not day.matches
    theirs = spb.DayTotals()
    theirs.CopyFrom(ours)
    asked = spb.ReconcileDayRequest(institution_id=XIANYANG_HOSPITAL, date=today, totals=theirs)
    own = await as_(
        addresses, "settlement", "institution", XIANYANG_HOSPITAL, "ReconcileDay", asked
    )
    assert own.matches and own.theirs == own.ours
    asked.totals.cash_pay_fen += 1
    assert not (await settlement.ReconcileDay(asked, timeout=10)).matches
    other = await refused(as_(addresses, "settlement", "institution", HOSPITAL, "ReconcileDay",
                              asked))  # fmt: skip
    assert other[1] == "PERMISSION_DENIED"
    tomorrow = (_today() + dt.timedelta(days=1)).isoformat()
    future = spb.ReconcileDayRequest(institution_id=XIANYANG_HOSPITAL, date=tomorrow)
    assert (await refused(settlement.ReconcileDay(future)))[1] == "INVALID_DATE"


async def test_a_finished_month_and_day_never_change_when_cancels_come_later(
    account, binding, settlement, raw
):  # rules N6, N7: final once over
    son, father = await changsha_son_xianyang_father(account, 10_000)
    await binding.GrantQuota(grant(son, father, 9_000), timeout=10)
    s = await settlement.Settle(bill(father, 3_000, institution_id=XIANYANG_HOSPITAL))
    # Its lists as they would be had it been settled at noon on the last day of last month:
    # the record's time and its places in the day's and month's lists moved there.
    first = _today().replace(day=1)
    last_day = first - dt.timedelta(days=1)
    noon = dt.datetime.combine(last_day, dt.time(4, 0), dt.UTC)  # 12:00 in Beijing
    at_ms = int(noon.timestamp() * 1000)
    key = f"acct:pay:{{{s.settlement_id}}}".encode()
    record = orjson.loads(await raw.get(key))
    record["at_ms"] = str(at_ms)
    await raw.set(key, orjson.dumps(record))
    member = "+" + s.settlement_id
    moves = [
        (
            f"acct:day:{{{XIANYANG_HOSPITAL}}}:{_today()}",
            f"acct:day:{{{XIANYANG_HOSPITAL}}}:{last_day}",
        ),
        (f"acct:clearing:{{{first:%Y-%m}}}", f"acct:clearing:{{{last_day:%Y-%m}}}"),
    ]
    for now_key, then_key in moves:
        assert await raw.zrem(now_key, member) == 1
        await raw.zadd(then_key, {member: at_ms})
    month_then = await _statement(settlement, f"{last_day:%Y-%m}")
    day_then = await _ours(settlement, XIANYANG_HOSPITAL, last_day.isoformat())
    assert month_then.final and day_then.final
    assert _row(month_then, "43", "61")[0] >= 1 and day_then.ours.settlements >= 1
    this_month = await _statement(settlement, f"{first:%Y-%m}")
    await settlement.CancelSettlement(
        spb.CancelSettlementRequest(settlement_id=s.settlement_id, reason="退费", request_id=rid())
    )
    assert await _statement(settlement, f"{last_day:%Y-%m}") == month_then
    assert await _ours(settlement, XIANYANG_HOSPITAL, last_day.isoformat()) == day_then
    now = await _statement(settlement, f"{first:%Y-%m}")
    was, is_ = _row(this_month, "43", "61"), _row(now, "43", "61")
    assert (is_[0] - was[0], is_[1] - was[1]) == (-1, -3_000)  # the refund counts when it is made


class Cut(Exception):
    """Where the binding service died: its call made, or not yet, its answer never seen."""


@pytest.fixture
async def steps(redis, account_addr) -> AsyncIterator[Quotas]:
    """The binding service's quota steps over the test stack, its marks swept at once (no
    window: views_due_after_ms=0)."""
    peer = channel(account_addr)
    store = BindingStore(redis)
    accounts = AccountClient(peer)
    lifecycle = Lifecycle(store, accounts, views_due_after_ms=0)
    clock = SystemClock()
    yield Quotas(store, accounts, lifecycle, Consent(store, lifecycle, clock), clock)
    await peer.close()


@pytest.mark.parametrize("made", [False, True], ids=["before the account", "after it"])
async def test_a_grant_cut_off_is_finished_by_the_sweep_and_never_half_made(
    account, settlement, steps, made
):  # rules N1, N2: no money set aside for a quota that is not there, nor the other way round
    son, father = await changsha_son_xianyang_father(account, 10_000)
    opening = steps.accounts.open_quota

    async def cut(request: pb.OpenQuotaRequest, timeout_s: float) -> bpb.Quota:
        if made:
            await opening(request, timeout_s)
        raise Cut()

    steps.accounts.open_quota = cut  # type: ignore[method-assign]
    quota_id = "Q4361" + rid()[:16]
    with pytest.raises(Cut):
        await steps.grant(quota_id, son, father, PARENT, 6_000, False, 10, 5.0)
    steps.accounts.open_quota = opening  # type: ignore[method-assign]
    marks = Keys.views_due("43")
    assert await steps.store.redis.zscore(marks, quota_id) is not None  # left for the sweep
    await steps.due.sweep()
    assert await steps.store.redis.zscore(marks, quota_id) is None  # finished
    found = await steps.get(quota_id, 5.0)
    if made:  # opened: the relative's side written, his bills draw on it
        assert (found.status, await money(account, son)) == (ACTIVE, (10_000, 6_000, 4_000))
        s = await settlement.Settle(bill(father, 1_000, institution_id=XIANYANG_HOSPITAL))
        assert legs(s) == [(son, QUOTA, 1_000)]
    else:  # never opened: recorded ENDED, so a late open of it sets nothing aside
        assert (found.status, found.granted_fen) == (ENDED, 0)
        link = await steps.link(quota_id)  # the grant's own request, arriving late
        late = pb.OpenQuotaRequest(quota_id=quota_id, funder_id=son, relative_id=father,
                                   relationship=PARENT, amount_fen=6_000, max_quotas=10,
                                   seq=link.seq, created_at=found.created_at)  # fmt: skip
        assert (await steps.accounts.open_quota(late, 5.0)).status == ENDED
        assert await money(account, son) == (10_000, 0, 10_000)


async def test_the_funder_watches_his_quota_legs_like_any_other(account, binding, settlement):
    # rules N3, A10: a quota's leg reaches the funder's watch as a SETTLEMENT, its refund too
    son, father = await changsha_son_xianyang_father(account, 10_000)
    await binding.GrantQuota(grant(son, father, 5_000), timeout=10)
    stream = await watch(settlement, son)
    try:
        s = await settlement.Settle(bill(father, 700, institution_id=XIANYANG_HOSPITAL))
        await settlement.CancelSettlement(
            spb.CancelSettlementRequest(
                settlement_id=s.settlement_id, reason="退费", request_id=rid()
            )
        )
        seen = await events(stream, 2)
    finally:
        stream.cancel()
    assert [(e.kind, e.amount_fen, e.settlement_id, e.patient_id, e.institution_id)
            for e in seen] == [
        (spb.PAYMENT_EVENT_KIND_SETTLEMENT, -700, s.settlement_id, father, XIANYANG_HOSPITAL),
        (spb.PAYMENT_EVENT_KIND_REFUND, 700, s.settlement_id, father, XIANYANG_HOSPITAL),
    ]  # fmt: skip


async def test_a_raise_racing_his_bills_his_family_aid_and_a_purchase_spends_nothing_set_aside(
    account, binding, settlement
):  # rule N2 under concurrency, every way money leaves his account at once
    son, father = await changsha_son_xianyang_father(account, 10_000)
    wife = await person(account, 1986, 0)
    await binding.CreateBinding(create(son, wife, SPOUSE), timeout=10)
    q = await binding.GrantQuota(grant(son, father, 2_000), timeout=10)
    buy = pb.PurchaseCommercialInsuranceRequest(person_id=son, amount_fen=1_000,
                                                insurer_code="PICC-HN", policy_no="r-" + rid()[:8],
                                                request_id=rid())  # fmt: skip
    calls = [
        binding.ChangeQuota(change(q.quota_id, 6_000), timeout=10),
        *(settlement.Settle(bill(son, 1_000), timeout=10) for _ in range(4)),
        *(settlement.Settle(bill(wife, 1_000), timeout=10) for _ in range(2)),
        account.PurchaseCommercialInsurance(buy, timeout=10),
    ]
    done = await asyncio.gather(*calls, return_exceptions=True)
    spent = sum(s.acct_pay_fen + s.acct_mulaid_pay_fen for s in done[1:7]
                if isinstance(s, spb.Settlement))  # fmt: skip
    spent += 1_000 if isinstance(done[7], pb.LedgerEntry) else 0
    balance, reserved, available = await money(account, son)
    quota = await quota_of(binding, q.quota_id)
    assert reserved == quota.remaining_fen == (6_000 if isinstance(done[0], bpb.Quota) else 2_000)
    assert balance == 10_000 - spent and available == balance - reserved >= 0
    s = await settlement.Settle(bill(father, 10_000, institution_id=XIANYANG_HOSPITAL))
    assert s.acct_mulaid_pay_fen == reserved  # what was set aside is all there
