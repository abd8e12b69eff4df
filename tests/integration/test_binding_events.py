"""Rule B12 lapsing from the account-event stream, B13 policy as data, and bad input."""

import asyncio

import grpc
import pytest

from gongji.account.v1 import account_pb2 as apb
from gongji.binding.v1 import binding_pb2 as bpb
from gongji.binding.v1 import binding_pb2_grpc
from services.binding.server import build as build_binding
from tests.integration.accounts import credit, rid, withdraw
from tests.integration.bindings import (
    CHILD,
    SIBLING,
    create,
    days_from_today,
    listed,
    payers,
    person,
)
from tests.support import eventually, refused, serving, settings


async def lapsed(binding, binding_id: str) -> bool:
    b = await binding.GetBinding(bpb.GetBindingRequest(binding_id=binding_id))
    return b.status == bpb.BINDING_STATUS_LAPSED


async def test_a_withdrawn_binder_s_bindings_lapse(account, binding):  # rule B12
    binder, kid1, kid2 = (
        await person(account, 1970),
        await person(account, 2000),
        await person(account, 2001),
    )
    other = await person(account, 1972)
    made = [await binding.CreateBinding(create(binder, k, CHILD)) for k in (kid1, kid2)]
    await binding.CreateBinding(create(other, kid1, CHILD))
    await withdraw(account, binder)
    for b in made:
        await eventually(lambda b=b: lapsed(binding, b.binding_id))
    assert await payers(binding, kid1) == [(other, 1)]
    assert await payers(binding, kid2) == []
    history = await listed(binding, binder=binder, inactive=True)
    assert {b.status for b in history} == {bpb.BINDING_STATUS_LAPSED}


async def test_an_event_delivered_twice_changes_nothing_twice(account, binding, redis):
    binder, spouse = await person(account), await person(account)
    b = await binding.CreateBinding(create(binder, spouse))
    await withdraw(account, spouse)
    await eventually(lambda: lapsed(binding, b.binding_id))
    first = await binding.GetBinding(bpb.GetBindingRequest(binding_id=b.binding_id))
    event = [f for _, f in await redis.xrange("events:account") if f["person_id"] == spouse][-1]
    await redis.xadd("events:account", event)  # a repeat, same event_id
    await asyncio.sleep(0.5)
    assert await binding.GetBinding(bpb.GetBindingRequest(binding_id=b.binding_id)) == first


@pytest.fixture
async def eight_relatives(redis_url, account_addr):
    """A binding service with the example policy: province 51 allows the eight relatives."""
    app = await build_binding(settings(redis_url, "binding", account_addr=account_addr,
                                       policy_file="config/policy.example.toml"))  # fmt: skip
    async with serving(app) as (channel, _):
        yield binding_pb2_grpc.BindingServiceStub(channel)


async def test_b13_a_province_switched_to_eight_relatives_by_configuration(
    account, eight_relatives
):  # rule B13
    sichuan, brother = (
        await person(account, region="510104"),
        await person(account, region="510104"),
    )
    b = await eight_relatives.CreateBinding(create(sichuan, brother, SIBLING))
    assert b.status == bpb.BINDING_STATUS_ACTIVE
    hunan, sister = await person(account), await person(account)
    assert (await refused(eight_relatives.CreateBinding(create(hunan, sister, SIBLING))))[1] == (
        "RELATIONSHIP_NOT_ALLOWED"
    )


async def test_bad_binding_input_is_refused_and_stores_nothing(account, binding):
    binder, spouse = await person(account), await person(account)
    bad = [
        (create("430102198005170013", spouse), "INVALID_PERSON_ID"),
        (create(binder, "123"), "INVALID_PERSON_ID"),
        (create(binder, spouse, relationship=0), "INVALID_ARGUMENT"),
        (create(binder, spouse, relationship=99), "INVALID_ARGUMENT"),
        (create(binder, spouse, start="2026-02-30"), "INVALID_DATE"),
        (create(binder, spouse, start="2026/01/01"), "INVALID_DATE"),
        (create(binder, spouse, start=days_from_today(5), end=days_from_today(4)), "INVALID_DATE"),
        (create(binder, spouse, start=days_from_today(5), end=days_from_today(5)), "INVALID_DATE"),
        (create(binder, spouse, start=days_from_today(-1)), "INVALID_DATE"),
        (create(binder, spouse, start=days_from_today(367)), "INVALID_DATE"),
        (create(binder, spouse, start="0001-01-01"), "INVALID_DATE"),
        (create(binder, spouse, start="2999-01-01"), "INVALID_DATE"),
        (bpb.CreateBindingRequest(binder_id=binder, beneficiary_id=spouse, relationship=1),
         "INVALID_ARGUMENT"),
    ]  # fmt: skip
    for request, reason in bad:
        assert await refused(binding.CreateBinding(request)) == (
            grpc.StatusCode.INVALID_ARGUMENT, reason,
        ), request  # fmt: skip
    assert await listed(binding, binder=binder, inactive=True) == []
    both = bpb.ListBindingsRequest(binder_id=binder, beneficiary_id=spouse)
    assert (await refused(binding.ListBindings(both)))[1] == "INVALID_ARGUMENT"
    assert (await refused(binding.GetPayers(bpb.GetPayersRequest(beneficiary_id=spouse,
                                                                 on_date="tomorrow"))))[1] == (
        "INVALID_DATE"
    )  # fmt: skip


async def test_create_binding_retried_with_its_request_id_makes_one(account, binding):
    binder, spouse = await person(account), await person(account)
    request = create(binder, spouse)
    first, second = await asyncio.gather(binding.CreateBinding(request),
                                         binding.CreateBinding(request))  # fmt: skip
    assert first == second
    assert await binding.CreateBinding(request) == first
    request.end_date = "2099-01-01"
    assert (await refused(binding.CreateBinding(request)))[1] == "IDEMPOTENCY_CONFLICT"
    assert len(await listed(binding, binder=binder)) == 1


async def test_an_old_closing_event_delivered_late_ends_nothing_made_after_it(
    account, binding, redis
):  # rule B12: a withdrawal, a re-open and a new binding, then the withdrawal's event again
    binder, spouse, other = await person(account), await person(account), await person(account)
    first = await binding.CreateBinding(create(binder, spouse))
    await withdraw(account, spouse)
    await eventually(lambda: lapsed(binding, first.binding_id))
    closed = [f for _, f in await redis.xrange("events:account") if f["person_id"] == spouse][-1]
    await account.OpenAccount(apb.OpenAccountRequest(
        person_id=spouse, name="李四", insurance_type=1, region_code="430102", request_id=rid(),
    ), timeout=5)  # fmt: skip
    await credit(account, spouse, 100)
    again = await binding.CreateBinding(create(binder, spouse))
    await redis.xadd("events:account", closed | {"event_id": f"{spouse}:late"})  # unseen id
    marker = await binding.CreateBinding(create(binder, other))
    await withdraw(account, other)  # its event comes after the late one: once it has lapsed...
    await eventually(lambda: lapsed(binding, marker.binding_id))
    got = await binding.GetBinding(bpb.GetBindingRequest(binding_id=again.binding_id))
    assert got.status == bpb.BINDING_STATUS_ACTIVE  # ...the late one was applied: it ended nothing
