"""How the binding service keeps bindings (services.binding.store): one small hash of views per
person and province, each record a short JSON array; a record kept before in named form still
reads, pays its place in the order and ends (rules B7, B10, B11)."""

from __future__ import annotations

import orjson

from services.binding.domain import Binding
from services.binding.store import BindingStore, Keys, new_binding_id
from services.common.enums import BindingStatus
from tests.support import new_pid


def made(binder: str, beneficiary: str, at_ms: int) -> Binding:
    return Binding(new_binding_id("43", "43"), binder, beneficiary, 1, "2026-01-01", "",
                   BindingStatus.ACTIVE, at_ms)  # fmt: skip


async def test_a_person_s_views_are_one_compact_hash(redis):  # rules B7, B10
    store, run = BindingStore(redis), new_pid()
    mum, dad, child = new_pid(), new_pid(), new_pid()
    by_mum = await store.create(made(mum, child, 10), 5, "fp", f"CreateBinding:{run}-r1")
    by_dad = await store.create(made(dad, child, 20), 5, "fp", f"CreateBinding:{run}-r2")
    for_mum = await store.create(made(dad, mum, 30), 5, "fp", f"CreateBinding:{run}-r3")
    assert (by_mum.priority, by_dad.priority, for_mum.priority) == (1, 2, 1)

    ours = (mum, dad, child, by_mum.binding_id, by_dad.binding_id, for_mum.binding_id)
    kept = {k async for k in redis.scan_iter(match="bind:{43}:*") if k.endswith(ours)}
    assert kept == {Keys.person("43", p) for p in (mum, dad, child)} | {
        Keys.record(b.binding_id) for b in (by_mum, by_dad, for_mum)
    }  # one hash per person, one record per binding: nothing else names them
    assert await redis.hgetall(Keys.person("43", mum)) == {
        f"a:{by_mum.binding_id}": "10", f"pair:{child}": by_mum.binding_id,
        f"e:{for_mum.binding_id}": "30", f"q:{for_mum.binding_id}": "1", "v": "1",
    }  # fmt: skip
    for pid in (mum, dad, child):
        assert await redis.object("encoding", Keys.person("43", pid)) in ("ziplist", "listpack")
    assert orjson.loads(await redis.get(Keys.record(by_mum.binding_id))) == [
        mum, child, 1, "2026-01-01", "", BindingStatus.ACTIVE, 10, 0, "",
    ]  # fmt: skip

    await store.end(by_mum.binding_id, BindingStatus.REMOVED, 40)  # B10: the gap closes
    assert [b.binding_id for b in await store.payers_of(child)] == [by_dad.binding_id]
    assert (await store.get(by_dad.binding_id)).priority == 1  # type: ignore[union-attr]
    again = await store.create(made(mum, child, 50), 5, "fp", f"CreateBinding:{run}-r4")  # B7: free
    assert again.priority == 2
    history = await store.bindings_of(mum, as_binder=True, include_inactive=True)
    assert [(b.binding_id, b.status) for b in history] == [
        (by_mum.binding_id, BindingStatus.REMOVED), (again.binding_id, BindingStatus.ACTIVE),
    ]  # fmt: skip


async def test_a_record_kept_in_named_form_still_reads_and_ends(redis):  # rule B11
    store, run = BindingStore(redis), new_pid()
    binder, child = new_pid(), new_pid()
    b = await store.create(made(binder, child, 10), 5, "fp", f"CreateBinding:{run}-r1")
    named = {"binding_id": b.binding_id, "binder_id": binder, "beneficiary_id": child,
             "relationship": 1, "start_date": "2026-01-01", "end_date": "", "status": 1,
             "created_ms": 10, "ended_ms": 0, "phone": ""}  # fmt: skip
    await redis.set(Keys.record(b.binding_id), orjson.dumps(named))

    assert await store.get(b.binding_id) == b
    assert await store.payers_of(child) == [b]
    ended = await store.end(b.binding_id, BindingStatus.LAPSED, 99)
    assert (ended.status, ended.ended_ms) == (BindingStatus.LAPSED, 99)  # type: ignore[union-attr]
    kept = orjson.loads(await redis.get(Keys.record(b.binding_id)))
    assert kept == named | {"status": BindingStatus.LAPSED, "ended_ms": 99}
    assert await store.payers_of(child) == []
    assert await store.create(made(binder, child, 100), 5, "fp", f"CreateBinding:{run}-r2")


async def test_three_payers_keep_the_hash_compact_through_reorder_and_end(redis):  # rule B10
    store, run = BindingStore(redis), new_pid()
    child = new_pid()
    payers = [
        await store.create(made(new_pid(), child, at), 5, "fp", f"CreateBinding:{run}-{at}")
        for at in (1, 2, 3)
    ]
    a, b, c = (p.binding_id for p in payers)
    assert await store.reorder("43", child, [c, a, b])
    assert await store.payer_ids("43", child) == [c, a, b]
    assert not await store.reorder("43", child, [c, a, a])  # not exactly the list: refused
    await store.end(a, BindingStatus.REMOVED, 9)
    assert [(x.binding_id, x.priority) for x in await store.payers_of(child)] == [(c, 1), (b, 2)]
    views = await redis.hgetall(Keys.person("43", child))
    assert {f: v for f, v in views.items() if f.startswith("q:")} == {f"q:{c}": "1", f"q:{b}": "2"}
    assert await redis.object("encoding", Keys.person("43", child)) in ("ziplist", "listpack")
