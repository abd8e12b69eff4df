"""A CreateBinding cut off between its steps (services/binding/lifecycle.py: the grant first,
then the binding, then its payer order): what a retry answers, and what becomes of a grant whose
binding was never made; and an end cut off before it revoked the grant. The simulator found all
three: a retry that named a binding that does not exist, grants left active for bindings never
made, and a grant left active by a lapse cut off (rule B11, invariant 4 of
docs/ARCHITECTURE.md)."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator

import orjson
import pytest

from gongji.binding.v1 import binding_pb2_grpc
from services.account.store import account_key
from services.binding import domain
from services.binding.server import BindingServicer
from services.binding.server import build as build_binding
from services.binding.store import Keys, new_binding_id
from services.common.enums import BindingStatus
from services.common.errors import DomainError
from services.common.rpc import fingerprint
from tests.integration.bindings import SPOUSE, create, person
from tests.support import POLICY_FILE, serving, settings


@pytest.fixture
async def own_binding(redis_url: str, account_addr: str) -> AsyncIterator[tuple[object, object]]:
    """A binding service of its own (its servicer at hand) over the test Redis."""
    app = await build_binding(
        settings(redis_url, "binding", account_addr=account_addr, policy_file=POLICY_FILE)
    )
    async with serving(app) as (channel, _):
        yield binding_pb2_grpc.BindingServiceStub(channel), app.services[0].servicer


def cut_off(binder: str, beneficiary: str) -> domain.Binding:
    """A binding as an attempt cut off half-way had it, its id its own."""
    return domain.Binding(
        new_binding_id("43", "43"), binder, beneficiary, SPOUSE, dt.date.today().isoformat(), "",
        BindingStatus.ACTIVE, 0,
    )  # fmt: skip


async def active_grants(redis, binder: str) -> set[str]:
    kept = await redis.hgetall(f"{account_key(binder)}:grants")
    return {b for b, raw in kept.items() if orjson.loads(raw)[3] == 1}


async def test_a_creation_retried_after_its_binding_was_stored_answers_that_binding(
    account, own_binding, redis
):  # rule B11: the answer names the binding made, and no grant stands for another id
    stub, servicer = own_binding
    assert isinstance(servicer, BindingServicer)
    dad, mum = await person(account, 1970), await person(account, 1972, 0)
    request = create(dad, mum, SPOUSE)
    first = cut_off(dad, mum)  # stored, its answer never recorded: the process died
    marker = f"CreateBinding:{request.request_id}"
    await servicer.lifecycle.create(first, 10, fingerprint(request), marker, 5)
    made = await stub.CreateBinding(request, timeout=10)
    assert made.binding_id == first.binding_id
    assert await active_grants(redis, dad) == {first.binding_id}


async def test_a_grant_for_a_binding_never_made_is_revoked_and_its_id_never_made_late(
    account, own_binding, redis
):  # invariant 4: an active grant only under an ACTIVE binding
    _, servicer = own_binding
    assert isinstance(servicer, BindingServicer)
    lifecycle = servicer.lifecycle
    dad, mum = await person(account, 1970), await person(account, 1972, 0)
    late = cut_off(dad, mum)  # granted, then paused before its binding was made
    await lifecycle.grants.mark(f"{late.binding_id} {dad}")
    await lifecycle.accounts.grant(dad, mum, late.binding_id, late.start_date, "", 5)
    lifecycle.grants.due_after_ms = 0  # as if the mark were older than any call
    assert await lifecycle.grants.sweep() >= 1  # (others of the suite's may be due too)
    assert await active_grants(redis, dad) == set()
    with pytest.raises(DomainError) as refused:  # the paused attempt wakes up
        await lifecycle.store.create(late, 10, "fp", f"CreateBinding:{late.binding_id}")
    assert refused.value.reason == "LOCK_TIMEOUT"
    assert await lifecycle.store.get(late.binding_id) is None


async def test_an_end_cut_off_before_its_grant_was_revoked_is_finished_by_the_sweep(
    account, own_binding, redis
):  # invariant 4: an active grant only under an ACTIVE binding, however its end was cut off
    stub, servicer = own_binding
    assert isinstance(servicer, BindingServicer)
    lifecycle = servicer.lifecycle
    dad, mum = await person(account, 1970), await person(account, 1972, 0)
    made = await stub.CreateBinding(create(dad, mum, SPOUSE), timeout=10)
    assert await active_grants(redis, dad) == {made.binding_id}
    revoke = lifecycle.accounts.revoke

    async def cut_off_here(*args: object, **kwargs: object) -> None:
        raise ConnectionError("the process died before the revocation")

    lifecycle.accounts.revoke = cut_off_here  # type: ignore[method-assign]
    with pytest.raises(ConnectionError):  # a removal (or a lapse) ended it, then died; its
        # end stamped by a clock far ahead of the marks' (the mark is due on theirs)
        await lifecycle.end(made.binding_id, BindingStatus.REMOVED, 2**42, 5)
    lifecycle.accounts.revoke = revoke  # type: ignore[method-assign]
    assert (await lifecycle.store.get(made.binding_id)).status == BindingStatus.REMOVED
    assert await active_grants(redis, dad) == {made.binding_id}  # nothing else will end it
    assert await servicer.consent.confirm(made.binding_id, 5)  # (a retry answers it as it is)
    assert await active_grants(redis, dad) == {made.binding_id}
    lifecycle.revokes.due_after_ms = 0  # as if the mark were older than any call
    assert await lifecycle.revokes.sweep() >= 1
    assert await active_grants(redis, dad) == set()
    assert await redis.zscore(Keys.revokes_due("43"), made.binding_id) is None  # done with
