"""Rules B1-B13 through the real gRPC API of the binding service (over the account service)."""

import asyncio

import grpc

from gongji.account.v1 import account_pb2 as pb
from gongji.binding.v1 import binding_pb2 as bpb
from tests.integration.accounts import rid, withdraw
from tests.integration.bindings import (
    CHILD,
    GRANDPARENT,
    PARENT,
    SIBLING,
    SPOUSE,
    create,
    days_from_today,
    listed,
    payers,
    person,
)  # fmt: skip
from tests.support import new_pid, refused

FAILED = grpc.StatusCode.FAILED_PRECONDITION


async def test_b1_the_binder_must_be_an_active_employee(account, binding):  # rule B1
    spouse = await person(account)
    resident = await person(account, resident=True, balance=0)
    assert await refused(binding.CreateBinding(create(resident, spouse))) == (
        FAILED, "BINDER_NOT_EMPLOYEE",
    )  # fmt: skip
    suspended = await person(account)
    await account.SuspendAccount(pb.SuspendAccountRequest(person_id=suspended, reason="x",
                                                          request_id=rid()))  # fmt: skip
    assert (await refused(binding.CreateBinding(create(suspended, spouse))))[1] == (
        "ACCOUNT_SUSPENDED"
    )
    closed = await person(account)
    await withdraw(account, closed)
    assert (await refused(binding.CreateBinding(create(closed, spouse))))[1] == "ACCOUNT_CLOSED"
    assert await refused(binding.CreateBinding(create(new_pid(), spouse))) == (
        grpc.StatusCode.NOT_FOUND, "ACCOUNT_NOT_FOUND",
    )  # fmt: skip


async def test_b2_the_beneficiary_must_be_insured_and_not_closed(account, binding):  # rule B2
    binder = await person(account)
    assert (await refused(binding.CreateBinding(create(binder, new_pid()))))[1] == (
        "BENEFICIARY_NOT_INSURED"
    )
    gone = await person(account)
    await account.TransferAccount(pb.TransferAccountRequest(person_id=gone, to_region_code="610400",
                                                            request_id=rid()))  # fmt: skip
    assert (await refused(binding.CreateBinding(create(binder, gone))))[1] == (
        "BENEFICIARY_NOT_INSURED"
    )
    resident = await person(account, resident=True, balance=0)
    b = await binding.CreateBinding(create(binder, resident))
    assert b.status == bpb.BINDING_STATUS_ACTIVE


async def test_b3_only_spouse_parents_and_children(account, binding):  # rule B3
    binder = await person(account, 1980)
    for relationship, year in ((SPOUSE, 1981), (PARENT, 1950), (CHILD, 2010)):
        await binding.CreateBinding(create(binder, await person(account, year), relationship))
    for relationship in (SIBLING, GRANDPARENT):
        other = await person(account, 1930)
        assert await refused(binding.CreateBinding(create(binder, other, relationship))) == (
            FAILED, "RELATIONSHIP_NOT_ALLOWED",
        )  # fmt: skip
    assert (await refused(binding.CreateBinding(create(binder, binder))))[1] == "SELF_BINDING"


async def test_b4_at_most_ten_active_bindings(account, binding):  # rule B4
    binder = await person(account, 1970)
    for _ in range(10):
        await binding.CreateBinding(create(binder, await person(account, 2000), CHILD))
    eleventh = await person(account, 2000)
    assert (await refused(binding.CreateBinding(create(binder, eleventh, CHILD))))[1] == (
        "BINDING_LIMIT_REACHED"
    )
    first = (await listed(binding, binder=binder))[0]
    await binding.RemoveBinding(bpb.RemoveBindingRequest(binding_id=first.binding_id,
                                                         request_id=rid()))  # fmt: skip
    await binding.CreateBinding(create(binder, eleventh, CHILD))


async def test_b4_thirty_concurrent_creations_make_exactly_ten(account, binding):  # rule B4
    binder = await person(account, 1960)
    relatives = [await person(account, 1990) for _ in range(30)]
    outcomes = await asyncio.gather(
        *(binding.CreateBinding(create(binder, r, CHILD), timeout=30) for r in relatives),
        return_exceptions=True,
    )
    made = [o for o in outcomes if isinstance(o, bpb.Binding)]
    refusals = [o for o in outcomes if not isinstance(o, bpb.Binding)]
    assert len(made) == 10
    assert all(isinstance(e, grpc.aio.AioRpcError) and "BINDING_LIMIT_REACHED" in e.details()
               for e in refusals)  # fmt: skip
    shown = await listed(binding, binder=binder)
    assert sorted(b.binding_id for b in shown) == sorted(b.binding_id for b in made)


async def test_b5_binder_and_beneficiary_in_one_province(account, binding):  # rule B5
    binder = await person(account, region="430102")
    far = await person(account, region="610402")
    assert (await refused(binding.CreateBinding(create(binder, far))))[1] == "CROSS_PROVINCE"


async def test_b6_the_binder_needs_money_when_binding(account, binding):  # rule B6
    broke = await person(account, balance=0)
    assert (await refused(binding.CreateBinding(create(broke, await person(account)))))[1] == (
        "ZERO_BALANCE"
    )


async def test_b7_one_active_binding_per_pair(account, binding):  # rule B7
    binder, spouse = await person(account), await person(account)
    first = await binding.CreateBinding(create(binder, spouse))
    assert (await refused(binding.CreateBinding(create(binder, spouse))))[1] == "BINDING_EXISTS"
    await binding.RemoveBinding(bpb.RemoveBindingRequest(binding_id=first.binding_id,
                                                         request_id=rid()))  # fmt: skip
    again = await binding.CreateBinding(create(binder, spouse))
    assert again.binding_id != first.binding_id


async def test_b8_a_parent_is_born_before_the_child(account, binding):  # rule B8
    binder = await person(account, 1980)
    young_parent = await person(account, 1990)
    assert (await refused(binding.CreateBinding(create(binder, young_parent, PARENT))))[1] == (
        "IMPLAUSIBLE_RELATIONSHIP"
    )
    old_child = await person(account, 1950)
    assert (await refused(binding.CreateBinding(create(binder, old_child, CHILD))))[1] == (
        "IMPLAUSIBLE_RELATIONSHIP"
    )


async def test_b9_a_binding_pays_only_inside_its_window(account, binding):  # rule B9
    binder, spouse = await person(account), await person(account)
    start, end = days_from_today(30), days_from_today(60)
    await binding.CreateBinding(create(binder, spouse, start=start, end=end))
    assert await payers(binding, spouse, days_from_today(29)) == []
    assert await payers(binding, spouse, start) == [(binder, 1)]
    assert await payers(binding, spouse, end) == [(binder, 1)]
    assert await payers(binding, spouse, days_from_today(61)) == []
    assert len(await listed(binding, binder=binder)) == 1  # future-dated counts as active


async def test_b10_payers_are_ordered_and_the_order_can_change(account, binding):  # rule B10
    child = await person(account, 2010)
    mother, father, grandma = (await person(account, 1980), await person(account, 1978),
                               await person(account, 1950))  # fmt: skip
    made = {}
    for p in (mother, father):
        made[p] = await binding.CreateBinding(create(p, child, CHILD))
    assert await payers(binding, child) == [(mother, 1), (father, 2)]
    r = await binding.SetPayerOrder(bpb.SetPayerOrderRequest(
        beneficiary_id=child, binder_ids=[father, mother], request_id=rid()))  # fmt: skip
    assert [(p.binder_id, p.priority) for p in r.payers] == [(father, 1), (mother, 2)]
    assert (await refused(binding.SetPayerOrder(bpb.SetPayerOrderRequest(
        beneficiary_id=child, binder_ids=[father, grandma], request_id=rid()))))[1] == (
        "INVALID_ARGUMENT"
    )  # fmt: skip
    await binding.RemoveBinding(bpb.RemoveBindingRequest(binding_id=made[father].binding_id,
                                                         request_id=rid()))  # fmt: skip
    assert await payers(binding, child) == [(mother, 1)]


async def test_b11_either_side_ends_a_binding_at_once_history_kept(account, binding):  # B11
    binder, spouse = await person(account), await person(account)
    b = await binding.CreateBinding(create(binder, spouse))
    removal = bpb.RemoveBindingRequest(binding_id=b.binding_id, request_id=rid())
    ended = await binding.RemoveBinding(removal)
    assert (ended.status, ended.priority) == (bpb.BINDING_STATUS_REMOVED, 0)
    assert ended.ended_at.seconds > 0
    assert await binding.RemoveBinding(removal) == ended
    again = await binding.RemoveBinding(bpb.RemoveBindingRequest(binding_id=b.binding_id,
                                                                 request_id=rid()))  # fmt: skip
    assert again.status == bpb.BINDING_STATUS_REMOVED
    assert await payers(binding, spouse) == []
    assert await listed(binding, beneficiary=spouse) == []
    assert [x.binding_id for x in await listed(binding, beneficiary=spouse, inactive=True)] == [
        b.binding_id
    ]
    assert (await binding.GetBinding(bpb.GetBindingRequest(binding_id=b.binding_id))) == ended
    assert await refused(binding.GetBinding(bpb.GetBindingRequest(binding_id="B4343nope"))) == (
        grpc.StatusCode.NOT_FOUND, "BINDING_NOT_FOUND",
    )  # fmt: skip


async def test_b12_a_suspended_binder_stays_bound(account, binding):  # rule B12
    binder, spouse = await person(account), await person(account)
    b = await binding.CreateBinding(create(binder, spouse))
    await account.SuspendAccount(pb.SuspendAccountRequest(person_id=binder, reason="x",
                                                          request_id=rid()))  # fmt: skip
    await asyncio.sleep(0.3)
    got = await binding.GetBinding(bpb.GetBindingRequest(binding_id=b.binding_id))
    assert got.status == bpb.BINDING_STATUS_ACTIVE


async def test_b9_get_payers_defaults_to_today_in_beijing(account, account_addr, redis_url):
    """The business date comes from the injected clock: 2030-06-30 23:30 UTC is already
    1 July in Beijing, the first day of this binding."""
    import datetime as dt

    from gongji.binding.v1 import binding_pb2_grpc
    from services.binding.server import build as build_binding
    from services.common.clock import FixedClock
    from tests.support import serving, settings

    clock = FixedClock(dt.datetime(2030, 6, 30, 23, 30, tzinfo=dt.UTC))
    app = await build_binding(settings(redis_url, "binding", account_addr=account_addr), clock)
    async with serving(app) as (channel, _):
        stub = binding_pb2_grpc.BindingServiceStub(channel)
        binder, spouse = await person(account), await person(account)
        await stub.CreateBinding(create(binder, spouse, start="2030-07-01"))
        assert await payers(stub, spouse) == [(binder, 1)]
        clock.advance(-3600)  # 22:30 UTC on 30 June = 06:30 Beijing, 1 July still
        assert await payers(stub, spouse) == [(binder, 1)]
        clock.advance(-8 * 3600)  # 14:30 UTC = 22:30 Beijing on 30 June
        assert await payers(stub, spouse) == []


async def test_the_phone_given_at_binding_is_stored_and_only_ever_shown_masked(
    account, binding
):  # CreateBinding's beneficiary_phone; rule I3
    binder, child = await person(account, 1970), await person(account, 1998)
    request = create(binder, child, CHILD)
    request.beneficiary_phone = "13812345678"
    made = await binding.CreateBinding(request)
    assert made.beneficiary_phone_masked == "138****5678"
    read = await binding.GetBinding(bpb.GetBindingRequest(binding_id=made.binding_id))
    listed = await binding.ListBindings(bpb.ListBindingsRequest(binder_id=binder))
    for answer in (made, read, listed):
        assert "13812345678" not in str(answer)
    assert read.beneficiary_phone_masked == "138****5678"
    without = await binding.CreateBinding(create(binder, await person(account, 1999), CHILD))
    assert without.beneficiary_phone_masked == ""


async def test_a_phone_that_is_not_a_mainland_mobile_number_is_refused(account, binding):
    binder, child = await person(account, 1970), await person(account, 1998)
    for wrong in ("12812345678", "1381234567", "138123456789", "+8613812345678", "1381234567x"):
        request = create(binder, child, CHILD)
        request.beneficiary_phone = wrong
        code, reason = await refused(binding.CreateBinding(request))
        assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_PHONE")
    assert not (await binding.ListBindings(bpb.ListBindingsRequest(binder_id=binder))).bindings
