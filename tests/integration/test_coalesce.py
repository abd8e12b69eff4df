"""services.common.coalesce: the commands coroutines issue in one turn of the event loop go out
as one pipeline, and each caller gets its own answer."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from services.account.store import AccountStore
from services.common.coalesce import coalescing
from services.common.errors import DomainError
from services.common.redisdb import connect
from tests.support import new_pid


@pytest.fixture
async def client(redis_url: str) -> aioredis.Redis:
    made = coalescing(connect(redis_url))
    yield made
    await made.aclose()


async def test_commands_of_one_turn_go_out_together_each_answered_alone(client):
    key = f"t:{new_pid()}"
    await client.set(key, "v")
    answers = await asyncio.gather(
        client.get(key), client.hget(key, "f"), client.incr(f"{key}:n"), client.exists(key),
        return_exceptions=True,
    )  # fmt: skip
    assert answers[0] == "v" and answers[2] == 1 and answers[3] == 1
    assert isinstance(answers[1], ResponseError)  # HGET of a string: its caller alone hears it
    assert client.coalescer.batches == 1


async def test_a_lone_command_goes_out_at_once_and_scripts_keep_their_refusals(client):
    store = AccountStore(client)
    before = client.coalescer.batches
    nobody, somebody = new_pid(), new_pid()
    await store.open(somebody, "甲", 1, "430102", "", "")
    got = await asyncio.gather(store.get(nobody), store.get(somebody), return_exceptions=True)
    assert isinstance(got[0], DomainError) and got[0].reason == "ACCOUNT_NOT_FOUND"
    assert got[1].person_id == somebody
    assert client.coalescer.batches == before + 1  # the open went alone, the two reads together
