"""An entry the account service makes carries its place in the ledger in its id (lib.lua
`placed`), so the entry index holds only the ids a payment names: its legs (`<payment>-<n>`)
and the refunds of a cancel (`-r<n>`), found again by the index when a step runs twice (rules
S9 refunds, A3 cancels)."""

from __future__ import annotations

import orjson

from services.account.domain import Source, place_in_id
from services.account.store import AccountStore, account_keys
from services.common.enums import EntryKind, InsuranceType, PaymentState
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


async def test_only_the_entries_a_payment_names_are_indexed(redis):  # rules S9, A3
    store = AccountStore(redis)
    pid, patient = new_pid(), new_pid()
    await opened(store, pid)
    await store.open(patient, "乙", InsuranceType.EMPLOYEE, "430102", "", "")  # nothing of his own
    await store.grant(pid, patient, "B4343aaaaaaaaaaaaaaaa", "2000-01-01", "")
    bought = await store.purchase(pid, 300, 40, "PICC-HN", "POL-1", "0", 2026, True, 1, "", "")
    assert place_in_id(bought.entry_id) == 2
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
    assert leg == "PAY1-1" and place_in_id(leg) is None  # a payment names its legs
    assert await redis.hgetall(account_keys(pid)[2]) == {leg: "3"}

    back = await store.cancel_policy(pid, "POL-1", "", "")
    assert (back.amount_fen, place_in_id(back.entry_id)) == (300, 4)
    cancelled = await store.cancel_payment("PAY1", "wrong", "c1", False)
    assert cancelled.state == PaymentState.CANCELLED
    assert await redis.hgetall(account_keys(pid)[2]) == {leg: "3", "PAY1-r1": "5"}
    ledger = [orjson.loads(e) for e in await redis.lrange(account_keys(pid)[1], 0, -1)]
    assert [place_in_id(e["entry_id"]) or e["entry_id"] for e in ledger] == [
        1, 2, leg, 4, "PAY1-r1",
    ]  # fmt: skip
    assert await store.cancel_payment("PAY1", "wrong", "c1", False) == cancelled  # once
    assert (await store.get(pid)).balance_fen == 10_000
