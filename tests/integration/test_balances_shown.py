"""Balances shown only to their owner (API.md "Other people's balances"): a leg's
`balance_after_fen` is its payer's, shown to him, to operators and services; the patient's own
leg also to the institution that settles it. To anyone else it is 0, in every answer that
carries legs."""

from __future__ import annotations

from typing import Any

from gongji.settlement.v1 import settlement_pb2 as spb
from tests.integration.accounts import rid
from tests.integration.bindings import CHILD, create, person
from tests.integration.test_settlement import HOSPITAL, bill
from tests.support import as_

CIT, INST, OP = "citizen", "institution", "operator"


def balances(s: spb.Settlement) -> dict[str, int]:
    return {leg.payer_id: leg.balance_after_fen for leg in s.legs}


async def _family(account: Any, binding: Any) -> tuple[str, str, str]:
    """A son whose bill drains his own account and his father's and is finished by his mother,
    who keeps 14,000 fen: the one balance after that is not 0."""
    son = await person(account, 1995, 1_000)
    dad, mum = await person(account, 1965, 3_000), await person(account, 1967, 20_000)
    for parent in (dad, mum):
        await binding.CreateBinding(create(parent, son, CHILD), timeout=10)
    return son, dad, mum


async def test_each_payer_sees_his_own_balance_and_nobody_elses(
    account, binding, addresses
):  # API.md "Other people's balances"
    son, dad, mum = await _family(account, binding)

    async def settlement(role: str, sub: str, rpc: str, request: Any) -> Any:
        return await as_(addresses, "settlement", role, sub, rpc, request)

    settled = await settlement(INST, HOSPITAL, "Settle", bill(son, 10_000))
    assert [(leg.payer_id, leg.amount_fen) for leg in settled.legs] == [
        (son, 1_000), (dad, 3_000), (mum, 6_000)]  # fmt: skip
    assert balances(settled) == {son: 0, dad: 0, mum: 0}  # the hospital sees no relative's
    by_id = spb.GetSettlementRequest(settlement_id=settled.settlement_id)
    for reader, role in ((son, CIT), (dad, CIT), (HOSPITAL, INST)):
        got = await settlement(role, reader, "GetSettlement", by_id)
        assert balances(got)[mum] == 0, reader
    assert balances(await settlement(CIT, mum, "GetSettlement", by_id))[mum] == 14_000
    assert balances(await settlement(OP, "staff-0427", "GetSettlement", by_id))[mum] == 14_000
    # in the family's consumption records and the hospital's listing
    for role, reader, query in (
        (CIT, son, spb.ListSettlementsRequest(patient_id=son)),
        (CIT, dad, spb.ListSettlementsRequest(payer_id=dad)),
        (INST, HOSPITAL, spb.ListSettlementsRequest(patient_id=son)),
    ):
        listed = (await settlement(role, reader, "ListSettlements", query)).settlements
        assert [balances(s)[mum] for s in listed] == [0], reader
    mine = await settlement(CIT, mum, "ListSettlements", spb.ListSettlementsRequest(payer_id=mum))
    assert [balances(s)[mum] for s in mine.settlements] == [14_000]
    # a quote names her next balance: the hospital may not learn it from PreSettle either
    quoted = await settlement(INST, HOSPITAL, "PreSettle", bill(son, 1_000))
    assert balances(quoted) == {mum: 0}
    assert balances(await settlement(OP, "staff-0427", "PreSettle", bill(son, 1_000))) == {
        mum: 13_000
    }
    cancel = spb.CancelSettlementRequest(
        settlement_id=settled.settlement_id, reason="退费", request_id=rid()
    )
    assert balances(await settlement(INST, HOSPITAL, "CancelSettlement", cancel))[mum] == 0
    again = await settlement(OP, "staff-0427", "Settle", bill(son, 5_000))
    assert balances(again)[mum] == 19_000  # all given back, then 1,000 of hers
    reverse = spb.ReverseSettlementRequest(
        institution_id=HOSPITAL, medins_setl_id=again.medins_setl_id, request_id=rid()
    )
    reversed_ = await settlement(INST, HOSPITAL, "ReverseSettlement", reverse)
    assert balances(reversed_.settlement)[mum] == 0


async def test_the_patient_and_his_hospital_see_his_own_balance(account, addresses):
    # API.md "Other people's balances": the receipt prints the patient's own balance (NHSA balc)
    patient = await person(account, 1980, 10_000)
    settled = await as_(addresses, "settlement", INST, HOSPITAL, "Settle", bill(patient, 3_000))
    assert balances(settled) == {patient: 7_000}
    by_id = spb.GetSettlementRequest(settlement_id=settled.settlement_id)
    own = await as_(addresses, "settlement", CIT, patient, "GetSettlement", by_id)
    assert balances(own) == {patient: 7_000}
    reverse = spb.ReverseSettlementRequest(
        institution_id=HOSPITAL, medins_setl_id=settled.medins_setl_id, request_id=rid()
    )
    reversed_ = await as_(addresses, "settlement", INST, HOSPITAL, "ReverseSettlement", reverse)
    assert balances(reversed_.settlement) == {patient: 7_000}
