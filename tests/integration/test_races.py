"""Races on the money paths: one key raced by several callers has one owner, and a suspension or
an unbinding, once acknowledged, stops every payment that comes after it (rules S4, S5, S8,
B11), however many settlements are in flight around it."""

from __future__ import annotations

import asyncio
import collections
import time

import grpc

from gongji.account.v1 import account_pb2 as pb
from gongji.binding.v1 import binding_pb2 as bpb
from gongji.settlement.v1 import settlement_pb2 as spb
from tests.integration.accounts import all_entries, get, rid
from tests.integration.bindings import CHILD, create, person
from tests.integration.test_settlement import bill

IN_FLIGHT = 40


async def test_a_key_raced_by_three_callers_has_one_owner(account, binding, settlement):
    # rules S8, S12: every answer for a key is the same settlement, debited once
    child = await person(account, 1990, 0)
    dad = await person(account, 1960, 10**9)
    await binding.CreateBinding(create(dad, child, CHILD))
    requests = [bill(child, 600) for _ in range(200)]
    answers = await asyncio.gather(
        *(settlement.Settle(r, timeout=20) for r in requests for _ in range(3)),
        return_exceptions=True,
    )
    by_key = collections.defaultdict(list)
    for r, a in zip([r for r in requests for _ in range(3)], answers, strict=True):
        by_key[r.medins_setl_id].append(a)
    for key, got in by_key.items():
        settled = [a for a in got if isinstance(a, spb.Settlement)]
        assert settled, key
        assert all(a == settled[0] for a in settled), key
        assert all("SETTLEMENT_IN_PROGRESS" in a.details() for a in got if a not in settled)
    debits = [e for e in await all_entries(account, dad) if e.amount_fen < 0]
    assert len(debits) == len(requests) and {e.amount_fen for e in debits} == {-600}
    assert (await get(account, dad)).balance_fen == 10**9 - 600 * len(requests)


async def debits_after(account, payer: str, acknowledged_ms: int) -> list[pb.LedgerEntry]:
    entries = await all_entries(account, payer)
    return [e for e in entries if e.amount_fen < 0 and _ms(e) > acknowledged_ms]


def _ms(e: pb.LedgerEntry) -> int:
    return e.created_at.seconds * 1000 + e.created_at.nanos // 1_000_000


async def settling_while(settlement, patient: str, change) -> tuple[int, list]:
    """IN_FLIGHT settlements for the patient; `change` is made and acknowledged among them.
    Returns when it was acknowledged (ms) and the settlements' answers."""
    calls = [asyncio.ensure_future(settlement.Settle(bill(patient, 10), timeout=20))
             for _ in range(IN_FLIGHT)]  # fmt: skip
    await asyncio.sleep(0.01)
    await change()
    acknowledged = int(time.time() * 1000)
    return acknowledged, await asyncio.gather(*calls, return_exceptions=True)


async def test_no_family_aid_for_a_patient_after_his_suspension_is_acknowledged(
    account, binding, settlement
):  # rule S5
    child, dad = await person(account, 1990, 0), await person(account, 1960, 10**8)
    await binding.CreateBinding(create(dad, child, CHILD))
    suspend = pb.SuspendAccountRequest(person_id=child, reason="fraud", request_id=rid())
    acknowledged, answers = await settling_while(
        settlement, child, lambda: account.SuspendAccount(suspend, timeout=10)
    )
    assert await debits_after(account, dad, acknowledged) == []
    refused = [a for a in answers if isinstance(a, grpc.aio.AioRpcError)]
    assert all("ACCOUNT_SUSPENDED" in a.details() for a in refused)
    assert 0 < len(refused) < IN_FLIGHT, "the suspension should fall among the settlements"


async def test_a_payer_suspended_is_skipped_from_his_acknowledgement_on(
    account, binding, settlement
):  # rules S4, A6
    child, dad = await person(account, 1990, 0), await person(account, 1960, 10**8)
    await binding.CreateBinding(create(dad, child, CHILD))
    suspend = pb.SuspendAccountRequest(person_id=dad, reason="fraud", request_id=rid())
    acknowledged, answers = await settling_while(
        settlement, child, lambda: account.SuspendAccount(suspend, timeout=10)
    )
    assert await debits_after(account, dad, acknowledged) == []
    cash = [a for a in answers if a.cash_pay_fen == 10]
    assert 0 < len(cash) < IN_FLIGHT, "the suspension should fall among the settlements"


async def test_a_removed_payer_pays_nothing_after_the_removal_is_acknowledged(
    account, binding, settlement
):  # rule B11
    child, dad = await person(account, 1990, 0), await person(account, 1960, 10**8)
    b = await binding.CreateBinding(create(dad, child, CHILD))
    removal = bpb.RemoveBindingRequest(binding_id=b.binding_id, request_id=rid())
    acknowledged, answers = await settling_while(
        settlement, child, lambda: binding.RemoveBinding(removal, timeout=10)
    )
    assert await debits_after(account, dad, acknowledged) == []
    assert all(isinstance(a, spb.Settlement) for a in answers)
    cash = [a for a in answers if a.cash_pay_fen == 10]
    assert 0 < len(cash) < IN_FLIGHT, "the removal should fall among the settlements"
