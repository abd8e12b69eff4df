"""An entry the account service makes carries its place in the ledger in its id (lib.lua
`placed`), so the entry index holds only the ids a payment names; an entry written before ids
carried their place is still found through the index (rule S9 refunds, A3 cancels, holds)."""

from __future__ import annotations

import orjson

from services.account.domain import Source, place_in_id
from services.account.store import AccountStore, account_keys
from services.common.enums import EntryKind, InsuranceType
from tests.support import new_pid


async def opened(store: AccountStore, *pids: str) -> None:
    for pid in pids:
        await store.open(pid, "甲", InsuranceType.EMPLOYEE, "430102", "", "")
        await store.credit(pid, 10_000, EntryKind.ALLOCATION, "m", "", "")


def test_an_entry_id_names_its_place_only_in_the_form_the_service_makes():
    assert place_in_id("e0123456789abcdef01234567.12") == 12
    for other in ("e0123456789abcdef01234567", "PAY1-1", "PAY1-r1", "E0a.1", "e0a.", "e0a.1x",
                  "e0a." + "9" * 16, "ex.1"):  # fmt: skip
        assert place_in_id(other) is None, other


async def test_entries_the_account_makes_need_no_index_and_are_refunded_once(redis):  # rule S9
    store = AccountStore(redis, 600)
    pid, patient = new_pid(), new_pid()
    await opened(store, pid)
    await store.open(patient, "乙", InsuranceType.EMPLOYEE, "430102", "", "")  # nothing of his own
    await store.grant(pid, patient, "B4343aaaaaaaaaaaaaaaa", "2000-01-01", "")
    await store.place_hold(pid, "h1", 300, 1, EntryKind.SETTLEMENT, "bill-1")
    committed = await store.commit_hold(pid, "h1")
    assert place_in_id(committed.entry_id) == 2
    assert (await store.commit_hold(pid, "h1")) == committed  # the repeat finds it by its place
    paid = await store.pay(
        "PAY1",
        EntryKind.SETTLEMENT,
        patient,
        [Source(pid, "B4343aaaaaaaaaaaaaaaa")],
        200,
        "2026-01-01",
        False,
        "fp",
    )
    leg = paid.shares[0].entry_id
    assert place_in_id(leg) is None  # a payment names its legs: they are indexed
    assert await redis.hgetall(account_keys(pid)[2]) == {leg: "3"}

    refund = await store.refund(pid, "rf-1", committed.entry_id, "back")
    assert (refund.amount_fen, place_in_id(refund.entry_id)) == (300, 4)
    assert await store.refund(pid, "rf-1", committed.entry_id, "back") == refund
    assert (await store.refund(pid, "rf-2", leg, "back")).amount_fen == 200
    ledger = [orjson.loads(e) for e in await redis.lrange(account_keys(pid)[1], 0, -1)]
    assert [place_in_id(e["entry_id"]) or e["entry_id"] for e in ledger] == [1, 2, leg, 4, 5]


async def test_an_entry_made_before_ids_carried_their_place_is_still_found(redis):  # rule S9
    store = AccountStore(redis, 600)
    pid = new_pid()
    await opened(store, pid)
    await store.place_hold(pid, "h1", 300, 1, EntryKind.SETTLEMENT, "bill-1")
    committed = await store.commit_hold(pid, "h1")
    old_id = "e" + "ab" * 12  # the form of before: no place, in the index
    ledger, index, holds = account_keys(pid)[1], account_keys(pid)[2], account_keys(pid)[3]
    entry = orjson.loads(await redis.lindex(ledger, 1)) | {"entry_id": old_id}
    hold = orjson.loads(await redis.hget(holds, "h1")) | {"entry_id": old_id}
    await redis.lset(ledger, 1, orjson.dumps(entry))
    await redis.hset(holds, "h1", orjson.dumps(hold))
    await redis.hset(index, old_id, 2)

    again = await store.commit_hold(pid, "h1")
    assert (again.entry_id, again.amount_fen) == (old_id, committed.amount_fen)
    refund = await store.refund(pid, "rf-1", old_id, "back")
    assert refund.amount_fen == 300 and place_in_id(refund.entry_id) == 3
    assert (await store.get(pid)).balance_fen == 10_000
