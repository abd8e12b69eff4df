"""A request answered before is answered again whatever the day it is retried on (API.md
"Conventions"): what depends on today (a binding's start, a premium's year) is judged only for a
request not answered before. The simulator found each of these as a retry after Beijing midnight
or in the new year that was refused instead."""

from __future__ import annotations

import datetime as dt

from gongji.settlement.v1 import settlement_pb2 as spb
from services.common.clock import BEIJING, FixedClock
from tests import support
from tests.integration.accounts import rid
from tests.integration.bindings import CHILD, SPOUSE, create, person
from tests.integration.own_stack import own_stack

NEW_YEARS_EVE = dt.datetime(2026, 12, 31, 20, tzinfo=BEIJING)
SIX_HOURS_S = 6 * 3600


async def test_a_binding_retried_after_midnight_is_the_binding_it_made(tmp_path_factory):
    # rule B9: the start is today or later for a new binding, not for the retry of a made one
    clock = FixedClock(NEW_YEARS_EVE)
    async with own_stack(tmp_path_factory.mktemp("binding"), clock=clock) as s:
        dad, mum = await person(s.account, 1970), await person(s.account, 1972, 0)
        request = create(dad, mum, SPOUSE, start="2026-12-31")
        made = await s.binding.CreateBinding(request, timeout=10)
        clock.advance(SIX_HOURS_S)
        assert await s.binding.CreateBinding(request, timeout=10) == made
        again = create(dad, mum, SPOUSE, start="2026-12-31")
        _, reason = await support.refused(s.binding.CreateBinding(again, timeout=10))
        assert reason == "INVALID_DATE"


async def test_a_premium_retried_in_the_new_year_is_the_premium_it_paid(tmp_path_factory):
    # rule A2: the year is this year or next for a new payment, not for the retry of a paid one
    clock = FixedClock(NEW_YEARS_EVE)
    async with own_stack(tmp_path_factory.mktemp("premium"), clock=clock) as s:
        dad, kid = (
            await person(s.account, 1970, 50_000),
            await person(s.account, 2012, 0, resident=True),
        )
        await s.binding.CreateBinding(create(dad, kid, CHILD), timeout=10)
        request = spb.PayResidentPremiumRequest(payer_id=dad, beneficiary_id=kid, year=2026,
                                                amount_fen=38_000, request_id=rid())  # fmt: skip
        paid = await s.settlement.PayResidentPremium(request, timeout=10)
        clock.advance(SIX_HOURS_S)
        assert await s.settlement.PayResidentPremium(request, timeout=10) == paid
        request.request_id = rid()
        _, reason = await support.refused(s.settlement.PayResidentPremium(request, timeout=10))
        assert reason == "INVALID_ARGUMENT"


async def test_the_december_run_retried_in_january_answers_what_it_did(tmp_path_factory):
    # rule A2: a month-end run of a year now past is refused new, answered again as it was
    clock = FixedClock(NEW_YEARS_EVE)
    async with own_stack(tmp_path_factory.mktemp("run"), clock=clock) as s:
        dad, kid = (
            await person(s.account, 1970, 50_000),
            await person(s.account, 2012, 0, resident=True),
        )
        await s.binding.CreateBinding(create(dad, kid, CHILD), timeout=10)
        auto = spb.SetPremiumAutoPayRequest(beneficiary_id=kid, payer_id=dad, enabled=True,
                                            request_id=rid())  # fmt: skip
        await s.settlement.SetPremiumAutoPay(auto, timeout=10)
        run = spb.RunPremiumDeductionsRequest(year=2026, run_id="december-2026")
        done = await s.settlement.RunPremiumDeductions(run, timeout=30)
        assert done.paid == 1
        clock.advance(SIX_HOURS_S)
        assert await s.settlement.RunPremiumDeductions(run, timeout=30) == done
        run.run_id = "january-2027"
        _, reason = await support.refused(s.settlement.RunPremiumDeductions(run, timeout=30))
        assert reason == "INVALID_ARGUMENT"


async def test_a_bill_retried_once_its_date_is_out_of_the_window_is_the_bill_it_settled(
    tmp_path_factory,
):
    # rule S8: a bill is settled within 30 days of its service date; its retry, answered the
    # same whenever it comes, and a new bill of that date refused
    clock = FixedClock(NEW_YEARS_EVE)
    async with own_stack(tmp_path_factory.mktemp("bill"), clock=clock) as s:
        patient = await person(s.account, 1970, 50_000)
        day = (NEW_YEARS_EVE.date() - dt.timedelta(days=30)).isoformat()
        request = spb.SettleRequest(
            institution_id="H43010500001", medins_setl_id="M-late-1", patient_id=patient,
            credential_type=spb.CREDENTIAL_TYPE_MEDICAL_CODE, credential_holder_id=patient,
            medfee_total_fen=5_000, fund_pay_fen=3_000, personal_burden_fen=2_000,
            service_date=day,
        )  # fmt: skip
        settled = await s.settlement.Settle(request, timeout=10)
        clock.advance(SIX_HOURS_S)  # 31 days after the service date now
        assert await s.settlement.Settle(request, timeout=10) == settled
        other = spb.SettleRequest()
        other.CopyFrom(request)
        other.personal_burden_fen, other.medfee_total_fen = 1_000, 4_000
        _, reason = await support.refused(s.settlement.Settle(other, timeout=10))
        assert reason == "IDEMPOTENCY_CONFLICT"
        other.medins_setl_id = "M-late-2"
        _, reason = await support.refused(s.settlement.Settle(other, timeout=10))
        assert reason == "INVALID_DATE"
