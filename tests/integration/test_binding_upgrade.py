"""Binding views kept in the earlier layout (seven keys per person and province) are converted
at the binding service's start into one hash per person, the same as the service writes now,
and then behave as if made by it (rules B4, B7, B10, B11); a later start reads one mark only."""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson
import pytest
import redis.asyncio as aioredis

from services.binding import upgrade
from services.binding.domain import Binding
from services.binding.server import build
from services.binding.store import BindingStore, Keys, new_binding_id
from services.common.enums import BindingStatus
from services.common.errors import DomainError
from tests.support import new_pid, settings

ACTIVE, REMOVED = int(BindingStatus.ACTIVE), int(BindingStatus.REMOVED)


@pytest.fixture
async def db(redis_url: str) -> AsyncIterator[tuple[str, aioredis.Redis]]:
    """A database of its own (14), as the earlier layout left it: no mark."""
    url = redis_url.rsplit("/", 1)[0] + "/14"
    redis = aioredis.Redis.from_url(url, decode_responses=True)
    await redis.flushdb()
    yield url, redis
    await redis.flushdb()
    await redis.aclose()


async def old_binding(
    r: aioredis.Redis, binding_id: str, binder: str, beneficiary: str, created_ms: int,
    status: int = ACTIVE,
) -> None:  # fmt: skip
    """A binding as the earlier layout kept it: a named record and the binder's keys."""
    pb, pe = binding_id[1:3], binding_id[3:5]
    record = {"binding_id": binding_id, "binder_id": binder, "beneficiary_id": beneficiary,
              "relationship": 3, "start_date": "2026-01-01", "end_date": "", "status": status,
              "created_ms": created_ms, "ended_ms": 0 if status == ACTIVE else created_ms + 1,
              "phone": ""}  # fmt: skip
    await r.set(f"bind:{{{pb}}}:rec:{binding_id}", orjson.dumps(record))
    await r.zadd(f"bind:{{{pb}}}:binder:{binder}", {binding_id: created_ms})
    await r.zadd(f"bind:{{{pe}}}:bene:{beneficiary}", {binding_id: created_ms})
    for pid, province in ((binder, pb), (beneficiary, pe)):
        await r.sadd(Keys.where(pid), province)
    if status == ACTIVE:
        await r.sadd(f"bind:{{{pb}}}:binder-active:{binder}", binding_id)
        await r.set(f"bind:{{{pb}}}:pair:{binder}:{beneficiary}", binding_id)
        await r.rpush(f"bind:{{{pe}}}:payers:{beneficiary}", binding_id)
        await r.incr(f"bind:{{{pe}}}:payers-v:{beneficiary}")


async def test_the_start_converts_the_earlier_layout_into_one_hash_per_person(db):
    url, r = db
    mum, dad, child, gran = new_pid(), new_pid(), new_pid(), new_pid()
    far = new_pid("520102")  # a binder in another province (a profile without B5)
    by_mum, by_dad, for_gran = (new_binding_id("43", "43") for _ in range(3))
    by_far = new_binding_id("52", "43")
    await old_binding(r, by_mum, mum, child, 10)
    await old_binding(r, by_dad, dad, child, 20)
    await old_binding(r, for_gran, mum, gran, 30, REMOVED)
    await old_binding(r, by_far, far, child, 40)
    payers = f"bind:{{43}}:payers:{child}"
    await r.delete(payers)
    await r.rpush(payers, by_dad, by_mum, by_far)  # reordered once: dad first
    await r.set(f"bind:{{43}}:payers-v:{child}", 7)

    app = await build(settings(url, "binding"))
    if app.close:
        await app.close()

    assert await r.get(upgrade.LAYOUT_KEY) == upgrade.LAYOUT
    left = {k async for k in r.scan_iter(match="bind:{*}:*")}
    assert left == {Keys.person("43", p) for p in (mum, dad, child, gran)} | {
        Keys.person("52", far)
    } | {Keys.record(i) for i in (by_mum, by_dad, for_gran, by_far)}  # fmt: skip
    assert await r.hgetall(Keys.person("43", mum)) == {
        f"a:{by_mum}": "10", f"a:{for_gran}": "30", f"pair:{child}": by_mum,
    }  # fmt: skip
    assert await r.hgetall(Keys.person("43", child)) == {
        f"e:{by_mum}": "10", f"e:{by_dad}": "20", f"e:{by_far}": "40",
        f"q:{by_dad}": "1", f"q:{by_mum}": "2", f"q:{by_far}": "3", "v": "7",
    }  # fmt: skip
    assert await r.hgetall(Keys.person("43", gran)) == {f"e:{for_gran}": "30"}
    assert await r.hgetall(Keys.person("52", far)) == {f"a:{by_far}": "40", f"pair:{child}": by_far}

    store = BindingStore(r)  # then as if the service had made them
    assert [b.binding_id for b in await store.payers_of(child)] == [by_dad, by_mum, by_far]
    # B7: the converted pair still holds
    repeat = Binding(new_binding_id("43", "43"), mum, child, 3, "2026-01-01", "",
                     BindingStatus.ACTIVE, 50)  # fmt: skip
    with pytest.raises(DomainError) as refused:
        await store.create(repeat, 5, "fp", "CreateBinding:again")
    assert refused.value.reason == "BINDING_EXISTS"
    await store.end(by_dad, BindingStatus.REMOVED, 60)  # B10: the gap closes
    assert [(b.binding_id, b.priority) for b in await store.payers_of(child)] == [
        (by_mum, 1), (by_far, 2),
    ]  # fmt: skip
    assert (await store.get(for_gran)).status == BindingStatus.REMOVED  # type: ignore[union-attr]


async def test_a_later_start_reads_the_mark_only(db, monkeypatch):
    _, r = db
    assert await upgrade.convert(r) == 0  # an empty database: nothing to convert, then the mark
    assert await r.get(upgrade.LAYOUT_KEY) == upgrade.LAYOUT
    await old_binding(r, new_binding_id("43", "43"), new_pid(), new_pid(), 10)
    asked: list[str] = []  # this client's commands (the server's counts include other tests')
    send = r.execute_command

    async def counted(*command: object, **options: object) -> object:
        asked.append(str(command[0]))
        return await send(*command, **options)

    monkeypatch.setattr(r, "execute_command", counted)
    assert await upgrade.convert(r) == 0
    assert asked == ["GET"]
