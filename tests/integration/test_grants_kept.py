"""How a family-aid grant is kept on the binder's account (lua/lib.lua `keep_grant`): short
enough that the grants hash stays in Redis's compact encoding, and a grant kept before in
named form still lets its binder pay (rule S4)."""

from __future__ import annotations

import orjson

from services.account.domain import Source
from services.account.store import AccountStore, account_keys
from services.common.enums import EntryKind, InsuranceType
from tests.support import new_pid


async def accounts(store: AccountStore) -> tuple[str, str]:
    binder, child = new_pid(), new_pid()
    for pid in (binder, child):
        await store.open(pid, "甲", InsuranceType.EMPLOYEE, "430102", "", "")
    await store.credit(binder, 10_000, EntryKind.ALLOCATION, "m", "", "")
    return binder, child


async def test_a_grant_with_an_end_date_keeps_the_grants_hash_compact(redis):
    store = AccountStore(redis)
    binder, child = await accounts(store)
    made = await store.grant(binder, child, "B4343aaaaaaaaaaaaaaaa", "2026-01-01", "2026-12-31")
    assert (made.beneficiary_id, made.end_date, made.active) == (child, "2026-12-31", True)
    grants = account_keys(binder)[8]
    assert orjson.loads(await redis.hget(grants, made.binding_id)) == [
        child, "2026-01-01", "2026-12-31", 1,
    ]  # fmt: skip
    assert await redis.object("encoding", grants) in ("ziplist", "listpack")
    revoked = await store.revoke(binder, made.binding_id)
    assert not revoked.active and revoked.beneficiary_id == child


async def test_a_grant_kept_in_named_form_still_pays_and_revokes(redis):  # rule S4
    store = AccountStore(redis)
    binder, child = await accounts(store)
    named = {"binder_id": binder, "beneficiary_id": child, "binding_id": "B4343bbbbbbbbbbbbbbbb",
             "start_date": "2026-01-01", "end_date": "", "active": True}  # fmt: skip
    await redis.hset(account_keys(binder)[8], named["binding_id"], orjson.dumps(named))
    source = Source(binder, named["binding_id"])
    paid = await store.pay("PNAMED1", EntryKind.SETTLEMENT, child, [source], 300, "2026-06-01",
                           False, "fp")  # fmt: skip
    assert [(s.person_id, s.amount_fen) for s in paid.shares] == [(binder, 300)]
    assert (await store.grant(binder, child, named["binding_id"], "2026-01-01", "")).active
    assert not (await store.revoke(binder, named["binding_id"])).active
