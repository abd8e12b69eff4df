"""Consent (rule B14, docs/RULES.md): a binding a citizen makes
for an adult relative waits for the relative; until he confirms it, it pays nothing."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from gongji.binding.v1 import binding_pb2 as bpb
from gongji.settlement.v1 import settlement_pb2 as spb
from services.binding.server import build as build_binding
from services.common.clock import FixedClock
from tests.integration.accounts import rid
from tests.integration.bindings import CHILD, PARENT, SPOUSE, create, listed, payers, person
from tests.integration.test_quotas import XIANYANG, XIANYANG_HOSPITAL
from tests.integration.test_settlement import bill, legs
from tests.support import POLICY_FILE, as_, eventually, refused, serving, settings

PENDING, ACTIVE = bpb.BINDING_STATUS_PENDING_CONSENT, bpb.BINDING_STATUS_ACTIVE
REMOVED, LAPSED = bpb.BINDING_STATUS_REMOVED, bpb.BINDING_STATUS_LAPSED
DENIED = (grpc.StatusCode.PERMISSION_DENIED, "PERMISSION_DENIED")
FAMILY_AID = spb.LEG_KIND_FAMILY_AID


@dataclasses.dataclass(frozen=True)
class As:
    """One caller's calls to the binding service, as his app or the counter would make them."""

    addresses: dict[str, str]
    role: str
    sub: str

    async def binding(self, rpc: str, request: Any) -> Any:
        return await as_(self.addresses, "binding", self.role, self.sub, rpc, request)


async def asked(
    addresses: dict[str, str], binder: str, relative: str, relationship: int = CHILD
) -> bpb.Binding:
    """A binding the binder asks for from his own app, of an adult: it waits for the relative."""
    made = await As(addresses, "citizen", binder).binding(
        "CreateBinding", create(binder, relative, relationship)
    )
    assert (made.status, made.priority) == (PENDING, 0)
    return made


async def lapses(binding: Any, binding_id: str, why: str) -> None:
    """Nobody asks: the binding service lapses it by itself, within seconds."""

    async def lapsed() -> bool:
        return (await binding.GetBinding(get(binding_id))).status == LAPSED

    await eventually(lapsed, 10, why)


def confirm(binding_id: str) -> bpb.ConfirmBindingRequest:
    return bpb.ConfirmBindingRequest(binding_id=binding_id, request_id=rid())


def get(binding_id: str) -> bpb.GetBindingRequest:
    return bpb.GetBindingRequest(binding_id=binding_id)


def premium(payer: str, beneficiary: str) -> spb.PayResidentPremiumRequest:
    return spb.PayResidentPremiumRequest(
        payer_id=payer, beneficiary_id=beneficiary, year=dt.date.today().year, amount_fen=30_000,
        request_id=rid(),
    )  # fmt: skip


async def test_a_citizens_binding_of_his_adult_wife_pays_nothing_until_she_confirms_it(
    account, binding, settlement, addresses
):  # rule B14
    husband = await person(account, 1975, 100_000)
    wife = await person(account, 1977, 0, resident=True)  # nothing of her own: all from him
    him, her = As(addresses, "citizen", husband), As(addresses, "citizen", wife)
    made = await asked(addresses, husband, wife, SPOUSE)
    # he sees it waiting; she sees it waiting for her; it is nobody's payer yet
    mine = await him.binding("ListBindings", bpb.ListBindingsRequest(binder_id=husband))
    assert [(b.binding_id, b.status) for b in mine.bindings] == [(made.binding_id, PENDING)]
    hers = await her.binding("ListBindings", bpb.ListBindingsRequest(beneficiary_id=wife))
    assert [(b.binding_id, b.status) for b in hers.bindings] == [(made.binding_id, PENDING)]
    assert await payers(binding, wife) == []
    unpaid = await settlement.Settle(bill(wife, 3_000), timeout=10)
    assert (legs(unpaid), unpaid.cash_pay_fen) == ([], 3_000)
    assert (await refused(settlement.PayResidentPremium(premium(husband, wife))))[1] == "NOT_BOUND"
    # only she may say yes
    assert await refused(him.binding("ConfirmBinding", confirm(made.binding_id))) == DENIED
    stranger = As(addresses, "citizen", await person(account, 1980))
    assert await refused(stranger.binding("ConfirmBinding", confirm(made.binding_id))) == DENIED
    confirmed = await her.binding("ConfirmBinding", confirm(made.binding_id))
    assert (confirmed.status, confirmed.priority) == (ACTIVE, 1)
    # from now on his account pays for her
    assert await payers(binding, wife) == [(husband, 1)]
    paid = await settlement.Settle(bill(wife, 3_000), timeout=10)
    assert legs(paid) == [(husband, FAMILY_AID, 3_000)]
    assert (await settlement.PayResidentPremium(premium(husband, wife))).amount_fen == 30_000
    # confirming again changes nothing
    again = await her.binding("ConfirmBinding", confirm(made.binding_id))
    assert (again.status, again.priority) == (ACTIVE, 1)


async def test_a_pending_binding_holds_its_pair_and_counts_toward_the_limit(
    account, binding, addresses
):  # rules B14, B4, B7
    parent, adult = await person(account, 1960), await person(account, 1990)
    await asked(addresses, parent, adult)
    again = await refused(binding.CreateBinding(create(parent, adult, CHILD)))
    assert again == (grpc.StatusCode.FAILED_PRECONDITION, "BINDING_EXISTS")
    for _ in range(9):
        await binding.CreateBinding(create(parent, await person(account, 1995), CHILD))
    eleventh = await refused(binding.CreateBinding(create(parent, await person(account, 1995))))
    assert eleventh[1] == "BINDING_LIMIT_REACHED"


async def test_the_counter_and_a_parent_of_a_minor_bind_at_once(account, binding, addresses):
    # rule B14: no confirmation from counter staff, or for a minor; 18 on the day is adult
    parent = await person(account, 1970)
    own = As(addresses, "citizen", parent)
    minor = await person(account, dt.date.today().year - 10)
    assert (await own.binding("CreateBinding", create(parent, minor, CHILD))).status == ACTIVE
    counter = As(addresses, "operator", "staff-0427")
    adult = await person(account, 1995)
    assert (await counter.binding("CreateBinding", create(parent, adult, CHILD))).status == ACTIVE
    assert await payers(binding, adult) == [(parent, 1)]


async def test_the_relative_declines_by_removing_it_and_the_pair_may_bind_again(
    account, binding, addresses
):  # rules B14, B11
    parent, child = await person(account, 1965), await person(account, 1992)
    made = await asked(addresses, parent, child)
    her = As(addresses, "citizen", child)
    declined = await her.binding(
        "RemoveBinding", bpb.RemoveBindingRequest(binding_id=made.binding_id, request_id=rid())
    )
    assert declined.status == REMOVED
    assert (await her.binding("ConfirmBinding", confirm(made.binding_id))).status == REMOVED
    assert await payers(binding, child) == []
    assert await listed(binding, beneficiary=child) == []
    assert (await binding.CreateBinding(create(parent, child, CHILD))).status == ACTIVE


@pytest.fixture
async def a_week_ago(redis_url: str, account_addr: str) -> AsyncIterator[dict[str, str]]:
    """A binding service whose clock runs 8 days behind: what it makes awaiting consent is past
    its 7 days by the time it is made."""
    clock = FixedClock(dt.datetime.now(dt.UTC) - dt.timedelta(days=8))
    app = await build_binding(
        settings(redis_url, "binding", account_addr=account_addr, policy_file=POLICY_FILE), clock
    )
    async with serving(app) as (_, port):
        yield {"binding": f"127.0.0.1:{port}"}


async def test_a_binding_not_confirmed_within_seven_days_lapses_by_itself(
    account, binding, addresses, a_week_ago
):  # rule B14
    parent = await person(account, 1960)
    late, forgotten = await person(account, 1990), await person(account, 1991)
    tried, left = await asked(a_week_ago, parent, late), await asked(a_week_ago, parent, forgotten)
    # confirmed too late: it lapses instead, and pays nothing
    answered = await As(addresses, "citizen", late).binding(
        "ConfirmBinding", confirm(tried.binding_id)
    )
    assert answered.status == LAPSED
    assert await payers(binding, late) == []
    await lapses(binding, left.binding_id, "an unconfirmed binding did not lapse")
    assert (await binding.CreateBinding(create(parent, forgotten, CHILD))).status == ACTIVE


async def test_a_pending_binding_lapses_when_the_binder_becomes_a_resident(
    account, binding, addresses
):  # rules B14, B12
    from gongji.account.v1 import account_pb2 as pb
    from gongji.common.v1 import common_pb2

    binder, adult = await person(account, 1968), await person(account, 1993)
    made = await asked(addresses, binder, adult)
    await account.ChangeInsuranceType(pb.ChangeInsuranceTypeRequest(
        person_id=binder, insurance_type=common_pb2.INSURANCE_TYPE_RESIDENT, request_id=rid(),
    ))  # fmt: skip
    await lapses(binding, made.binding_id, "a pending binding outlived its binder's insurance")


async def test_consent_across_two_provinces(account, binding, addresses):
    # rule B14 where B5 is lifted (Guizhou, tests/policy.toml): the two sides in two steps
    binder = await person(account, 1970, 50_000, region="520102")
    adult = await person(account, 1996, 0, region="430102")
    made = await asked(addresses, binder, adult)
    awaiting = await listed(binding, beneficiary=adult)
    assert [(b.binding_id, b.status) for b in awaiting] == [(made.binding_id, PENDING)]
    assert await payers(binding, adult) == []
    confirmed = await As(addresses, "citizen", adult).binding(
        "ConfirmBinding", confirm(made.binding_id)
    )
    assert (confirmed.status, confirmed.priority) == (ACTIVE, 1)
    assert await payers(binding, adult) == [(binder, 1)]


async def test_the_audit_sees_nothing_wrong_in_bindings_awaiting_consent(
    account, binding, addresses, redis_url
):  # rule B14, invariant 4
    from gongji.account.v1 import account_pb2 as pb
    from services.audit import audit, render
    from services.common import policy
    from services.common.ids import mask

    parent = await person(account, 1960)
    waiting, cut_off = await person(account, 1990), await person(account, 1991)
    first, second = await asked(addresses, parent, waiting), await asked(addresses, parent, cut_off)
    # a confirmation cut off after its grant: the grant is there, the binding still waits
    await account.GrantFamilyAid(pb.GrantFamilyAidRequest(
        binder_id=parent, beneficiary_id=cut_off, binding_id=second.binding_id,
        start_date=second.start_date,
    ))  # fmt: skip
    assert await payers(binding, cut_off) == []
    report = await audit(redis_url, policy=policy.load(POLICY_FILE))
    ours = {mask(parent), mask(waiting), mask(cut_off), first.binding_id, second.binding_id}
    assert not [v for v in report.violations if v.subject in ours], render(report)


def _quota(funder: str, relative: str, amount: int) -> bpb.GrantQuotaRequest:
    return bpb.GrantQuotaRequest(funder_id=funder, relative_id=relative, amount_fen=amount,
                                 relationship=PARENT, request_id=rid())  # fmt: skip


def _confirm_quota(quota_id: str) -> bpb.ConfirmQuotaRequest:
    return bpb.ConfirmQuotaRequest(quota_id=quota_id, request_id=rid())


async def _reserved(account: Any, pid: str) -> int:
    from gongji.account.v1 import account_pb2 as pb

    return (await account.GetAccount(pb.GetAccountRequest(person_id=pid))).quota_reserved_fen


async def test_a_citizens_quota_for_his_adult_father_waits_for_the_fathers_yes(
    account, binding, settlement, addresses
):  # rules B14, N1, N2
    son, father = await person(account, 1985, 10_000), await person(account, 1955, 0, XIANYANG)
    him, dad = As(addresses, "citizen", son), As(addresses, "citizen", father)
    made = await him.binding("GrantQuota", _quota(son, father, 4_000))
    assert made.status == bpb.QUOTA_STATUS_PENDING_CONSENT and await _reserved(account, son) == 0
    unpaid = await settlement.Settle(bill(father, 1_000, institution_id=XIANYANG_HOSPITAL))
    assert (legs(unpaid), unpaid.cash_pay_fen) == ([], 1_000)
    waiting = await dad.binding("ListQuotas", bpb.ListQuotasRequest(relative_id=father))
    assert [(q.quota_id, q.status) for q in waiting.quotas] == [(made.quota_id, made.status)]
    assert await refused(him.binding("ConfirmQuota", _confirm_quota(made.quota_id))) == DENIED
    confirmed = await dad.binding("ConfirmQuota", _confirm_quota(made.quota_id))
    assert confirmed.status == bpb.QUOTA_STATUS_ACTIVE and await _reserved(account, son) == 4_000
    paid = await settlement.Settle(bill(father, 1_000, institution_id=XIANYANG_HOSPITAL))
    assert legs(paid) == [(son, spb.LEG_KIND_QUOTA, 1_000)]
    again = await dad.binding("ConfirmQuota", _confirm_quota(made.quota_id))
    assert (again.status, again.used_fen) == (bpb.QUOTA_STATUS_ACTIVE, 1_000)


async def test_a_quota_is_checked_against_the_money_again_when_confirmed(
    account, binding, settlement, addresses
):  # rules B14, N2: set aside at confirmation
    son, father = await person(account, 1985, 10_000), await person(account, 1955, 0, XIANYANG)
    him = As(addresses, "citizen", son)
    too_much = await refused(him.binding("GrantQuota", _quota(son, father, 10_001)))
    assert too_much[1] == "INSUFFICIENT_FUNDS"  # checked when granted, and again when confirmed
    made = await him.binding("GrantQuota", _quota(son, father, 8_000))
    await settlement.Settle(bill(son, 5_000), timeout=10)  # his own bill, meanwhile
    dad = As(addresses, "citizen", father)
    late = await refused(dad.binding("ConfirmQuota", _confirm_quota(made.quota_id)))
    assert late[1] == "INSUFFICIENT_FUNDS"
    found = await binding.GetQuota(bpb.GetQuotaRequest(quota_id=made.quota_id))
    assert found.status == bpb.QUOTA_STATUS_PENDING_CONSENT and await _reserved(account, son) == 0


async def test_a_quota_not_confirmed_within_seven_days_ends_by_itself(
    account, binding, addresses, a_week_ago
):  # rule B14
    son = await person(account, 1985, 10_000)
    late, forgotten = await person(account, 1955, 0), await person(account, 1956, 0)
    him = As(a_week_ago, "citizen", son)
    tried = await him.binding("GrantQuota", _quota(son, late, 1_000))
    left = await him.binding("GrantQuota", _quota(son, forgotten, 1_000))
    answered = await As(addresses, "citizen", late).binding(
        "ConfirmQuota", _confirm_quota(tried.quota_id)
    )
    assert (answered.status, answered.end_reason) == (
        bpb.QUOTA_STATUS_ENDED, bpb.QUOTA_END_REASON_NOT_CONFIRMED)  # fmt: skip

    async def ended() -> bool:
        found = await binding.GetQuota(bpb.GetQuotaRequest(quota_id=left.quota_id))
        return found.status == bpb.QUOTA_STATUS_ENDED

    await eventually(ended, 10, "an unconfirmed quota did not end")
    assert await _reserved(account, son) == 0
