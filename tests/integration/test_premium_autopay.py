"""Automatic month-end premium deduction (rule A2), over a stack with a Redis of its own so the
job's counts are this test's: who is paid, who is skipped and why, who was paid before; a run
repeated pays no one twice. Who may set or change an auto-pay, over the shared stack (no job
runs there)."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator

import grpc
import pytest

from gongji.account.v1 import account_pb2 as apb
from gongji.common.v1.common_pb2 import INSURANCE_TYPE_RESIDENT as RESIDENT
from gongji.settlement.v1 import settlement_pb2 as spb
from services.common.clock import BEIJING, FixedClock
from tests.integration.accounts import all_entries, credit, rid, stop
from tests.integration.bindings import CHILD, PARENT, create, person
from tests.integration.own_stack import OwnStack, own_stack
from tests.support import as_, refused

YEAR = dt.date.today().year + 1  # next year's premiums: due now, paid by nobody yet
PREMIUM = 40_000  # the built-in policy's resident premium
DENIED = (grpc.StatusCode.PERMISSION_DENIED, "PERMISSION_DENIED")


@pytest.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[OwnStack]:
    async with own_stack(tmp_path_factory.mktemp("autopay")) as own:
        yield own


async def family(s: OwnStack, balance: int) -> tuple[str, str]:
    parent = await person(s.account, 1970, balance)
    kid = await person(s.account, 2010, 0, resident=True)
    await s.binding.CreateBinding(create(parent, kid, CHILD), timeout=10)
    return parent, kid


def autopay(kid: str, payer: str, enabled: bool = True) -> spb.SetPremiumAutoPayRequest:
    return spb.SetPremiumAutoPayRequest(beneficiary_id=kid, payer_id=payer, enabled=enabled,
                                        request_id=rid())  # fmt: skip


def run(run_id: str = "", year: int = YEAR) -> spb.RunPremiumDeductionsRequest:
    return spb.RunPremiumDeductionsRequest(year=year, run_id=run_id or rid())


async def premiums_paid(s: OwnStack, payer: str) -> list[int]:
    return [-e.amount_fen for e in await all_entries(s.account, payer)
            if e.kind == apb.ENTRY_KIND_PREMIUM]  # fmt: skip


async def test_the_month_end_run_pays_skips_and_never_pays_twice(stack):  # rule A2
    s = stack
    rich, kid = await family(s, 100_000)
    poor, poor_kid = await family(s, 10_000)
    off, off_kid = await family(s, 100_000)
    early, early_kid = await family(s, 100_000)
    for payer, beneficiary in ((rich, kid), (poor, poor_kid), (early, early_kid)):
        await s.settlement.SetPremiumAutoPay(autopay(beneficiary, payer))
    await s.settlement.SetPremiumAutoPay(autopay(off_kid, off, enabled=False))
    await s.settlement.PayResidentPremium(spb.PayResidentPremiumRequest(
        payer_id=early, beneficiary_id=early_kid, year=YEAR, amount_fen=PREMIUM, request_id=rid(),
    ))  # paid at the counter before the month end  # fmt: skip

    first = await s.settlement.RunPremiumDeductions(run("run-1"))
    assert (first.paid, first.already_paid) == (1, 1)
    assert [(p.beneficiary_id, p.payer_id, p.amount_fen) for p in first.payments] == [
        (kid, rich, PREMIUM)]  # fmt: skip
    assert [(k.beneficiary_id, k.reason) for k in first.skipped] == [
        (poor_kid, "INSUFFICIENT_FUNDS")]  # fmt: skip

    again = await s.settlement.RunPremiumDeductions(run("run-2"))
    assert (again.paid, again.already_paid, len(again.skipped)) == (0, 2, 1)
    assert await premiums_paid(s, rich) == [PREMIUM] and await premiums_paid(s, off) == []
    assert await premiums_paid(s, early) == [PREMIUM]

    assert await s.settlement.RunPremiumDeductions(run("run-1")) == first  # the same run
    assert (await refused(s.settlement.RunPremiumDeductions(run("run-1", YEAR - 1))))[1] == (
        "IDEMPOTENCY_CONFLICT"
    )


async def test_an_auto_pay_needs_a_resident_and_a_payer_bound_to_him(stack):  # rule A2
    s = stack
    parent, kid = await family(s, 100_000)
    stranger = await person(s.account, 1971, 100_000)
    adult = await person(s.account, 1995, 100_000)  # employee-insured
    await s.binding.CreateBinding(create(parent, adult, CHILD), timeout=10)
    assert (await refused(s.settlement.SetPremiumAutoPay(autopay(kid, stranger))))[1] == (
        "NOT_BOUND"
    )
    assert (await refused(s.settlement.SetPremiumAutoPay(autopay(adult, parent))))[1] == (
        "BENEFICIARY_NOT_RESIDENT"
    )
    code, reason = await refused(s.settlement.GetPremiumAutoPay(
        spb.GetPremiumAutoPayRequest(beneficiary_id=kid)))  # fmt: skip
    assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "AUTO_PAY_NOT_FOUND")


async def test_setting_again_replaces_and_disabled_is_kept(stack):  # rule A2
    s = stack
    parent, kid = await family(s, 100_000)
    await s.settlement.SetPremiumAutoPay(autopay(kid, parent))
    await s.settlement.SetPremiumAutoPay(autopay(kid, parent, enabled=False))
    got = await s.settlement.GetPremiumAutoPay(spb.GetPremiumAutoPayRequest(beneficiary_id=kid))
    assert (got.payer_id, got.enabled) == (parent, False)


async def test_a_former_employee_pays_his_own_premium_and_a_stopped_payer_is_skipped(stack):
    # rules A2, A9: 使用本人医保个人账户缴纳; a payer whose insurance is stopped pays nothing
    s = stack
    former = await person(s.account, 1960, 100_000)
    await s.account.ChangeInsuranceType(apb.ChangeInsuranceTypeRequest(
        person_id=former, insurance_type=RESIDENT, request_id=rid()))  # fmt: skip
    await s.settlement.SetPremiumAutoPay(autopay(former, former))
    never = await person(s.account, 1961, 0, resident=True)
    assert (await refused(s.settlement.SetPremiumAutoPay(autopay(never, never))))[1] == (
        "NO_PERSONAL_ACCOUNT"
    )
    parent, kid = await family(s, 100_000)
    await s.settlement.SetPremiumAutoPay(autopay(kid, parent))
    await stop(s.account, parent, apb.STOP_REASON_DEATH)
    done = await s.settlement.RunPremiumDeductions(run())
    assert (former, former, PREMIUM) in [
        (p.beneficiary_id, p.payer_id, p.amount_fen) for p in done.payments
    ]
    assert (kid, parent, "INSURANCE_STOPPED") in [
        (k.beneficiary_id, k.payer_id, k.reason) for k in done.skipped
    ]
    assert await premiums_paid(s, former) == [PREMIUM]
    assert await premiums_paid(s, parent) == []


def _month_ends(year: int) -> list[dt.date]:
    """The last day of each month of `year`."""
    firsts = [dt.date(year + (m == 12), m % 12 + 1, 1) for m in range(1, 13)]
    return [first - dt.timedelta(days=1) for first in firsts]


async def test_the_run_of_every_month_end_of_a_premium_year_pays_each_once(tmp_path_factory):
    # rule A2: the year's payment id is the beneficiary's and the year's, and the runs of the
    # next month-ends find it made, whatever day it is and whoever pays now; none fails
    year = 2027
    days = [dt.date(year - 1, 12, 31), *_month_ends(year)]
    clock = FixedClock(dt.datetime.combine(days[0], dt.time(12), BEIJING))
    async with own_stack(tmp_path_factory.mktemp("months"), clock=clock) as s:
        dad, kid = await family(s, 100_000)
        mum = await person(s.account, 1972, 100_000)
        await s.binding.CreateBinding(create(mum, kid, CHILD), timeout=10)
        late, late_kid = await family(s, 10_000)  # short of the premium until April
        await s.settlement.SetPremiumAutoPay(autopay(kid, dad))
        await s.settlement.SetPremiumAutoPay(autopay(late_kid, late))
        seen = []
        for day in days:
            clock.move_to(dt.datetime.combine(day, dt.time(23, 30), BEIJING))
            if (day.year, day.month) == (year, 2):  # mum pays from now on
                await s.settlement.SetPremiumAutoPay(autopay(kid, mum))
            if (day.year, day.month) == (year, 4):
                await credit(s.account, late, 50_000)
            done = await s.settlement.RunPremiumDeductions(run(year=year))
            seen.append((done.paid, done.already_paid, [k.reason for k in done.skipped]))
        short = ["INSUFFICIENT_FUNDS"]
        assert seen == [(1, 0, short)] + [(0, 1, short)] * 3 + [(1, 1, [])] + [(0, 2, [])] * 8
        assert await premiums_paid(s, dad) == [PREMIUM]
        assert await premiums_paid(s, late) == [PREMIUM]
        assert await premiums_paid(s, mum) == []


async def _mother_with_auto_pay(account, binding, settlement) -> tuple[str, str, str]:
    """A resident mother bound to her son and her daughter; the son's auto-pay pays for her."""
    mother = await person(account, 1950, 0, resident=True)
    son, daughter = await person(account, 1975, 100_000), await person(account, 1978, 100_000)
    for child in (son, daughter):
        await binding.CreateBinding(create(child, mother, PARENT), timeout=10)
    await settlement.SetPremiumAutoPay(autopay(mother, son), timeout=10)
    return mother, son, daughter


async def _auto_pay_of(settlement, beneficiary: str) -> tuple[str, bool]:
    got = await settlement.GetPremiumAutoPay(
        spb.GetPremiumAutoPayRequest(beneficiary_id=beneficiary), timeout=10
    )
    return got.payer_id, got.enabled


async def test_a_stranger_or_another_relative_cannot_switch_off_or_take_over_an_auto_pay(
    account, binding, settlement, addresses
):  # rule A2; API.md "SetPremiumAutoPay" (privacy between relatives)
    mother, son, daughter = await _mother_with_auto_pay(account, binding, settlement)
    stranger = await person(account, 1980, 100_000)
    for who in (stranger, daughter):
        for enabled in (False, True):
            outcome = await refused(as_citizen(addresses, who, autopay(mother, who, enabled)))
            assert outcome == DENIED, (who == daughter, enabled)
    assert await _auto_pay_of(settlement, mother) == (son, True)


async def test_the_beneficiary_the_payer_or_the_counter_change_an_auto_pay(
    account, binding, settlement, addresses
):  # rule A2
    mother, son, daughter = await _mother_with_auto_pay(account, binding, settlement)
    await as_citizen(addresses, mother, autopay(mother, son, enabled=False))
    assert await _auto_pay_of(settlement, mother) == (son, False)
    await as_citizen(addresses, son, autopay(mother, son))
    await as_citizen(addresses, mother, autopay(mother, daughter))  # she chooses who pays
    assert await _auto_pay_of(settlement, mother) == (daughter, True)
    await as_citizen(addresses, daughter, autopay(mother, daughter, enabled=False))
    await as_(addresses, "settlement", "operator", "staff-0427", "SetPremiumAutoPay",
              autopay(mother, son))  # fmt: skip
    assert await _auto_pay_of(settlement, mother) == (son, True)


async def test_a_new_payer_must_be_bound_even_to_a_disabled_auto_pay(
    account, binding, settlement, addresses
):  # rule A2
    mother, son, _ = await _mother_with_auto_pay(account, binding, settlement)
    stranger = await person(account, 1980, 100_000)
    off = autopay(mother, stranger, enabled=False)
    assert (await refused(settlement.SetPremiumAutoPay(off)))[1] == "NOT_BOUND"
    assert (await refused(as_citizen(addresses, mother, off)))[1] == "NOT_BOUND"
    assert await _auto_pay_of(settlement, mother) == (son, True)
    # with none stored, a stranger names himself the payer of someone he is not bound to
    alone = await person(account, 1952, 0, resident=True)
    new = autopay(alone, stranger, enabled=False)
    assert (await refused(as_citizen(addresses, stranger, new)))[1] == "NOT_BOUND"
    code, _ = await refused(settlement.GetPremiumAutoPay(
        spb.GetPremiumAutoPayRequest(beneficiary_id=alone)))  # fmt: skip
    assert code == grpc.StatusCode.NOT_FOUND


async def as_citizen(addresses, who: str, request: spb.SetPremiumAutoPayRequest):
    return await as_(addresses, "settlement", "citizen", who, "SetPremiumAutoPay", request)
