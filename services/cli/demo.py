"""`gongji demo`: the story of family mutual aid (家庭共济), played against the running stack.

A Changsha employee binds his wife from his phone; she is an adult, so the binding waits until
she confirms it from hers. At the counter he binds his mother and his son. He pays his mother's
resident premium from his account. His son, a young employee with little in his own account, pays
a bill at a designated pharmacy: his own account first, then his father's and his mother's
accounts in their order, the rest in cash. The family reads the consumption record, the pharmacy
cancels the bill, and every account gets its money back. Each run is a new family (fresh
synthetic ids).
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from typing import TypeAlias

from gongji.account.v1 import account_pb2 as apb
from gongji.binding.v1 import binding_pb2 as bpb
from gongji.common.v1 import common_pb2
from gongji.settlement.v1 import settlement_pb2 as spb
from services.cli import show
from services.cli.session import connect, request_id
from services.client import Client, GongjiError
from services.common.clock import SystemClock, beijing_today
from services.common.ids import make_person_id

PHARMACY = "P43010500003"  # 长沙市老百姓大药房, designated in config/registry.toml
CHANGSHA = "430102"
Kind: TypeAlias = common_pb2.InsuranceType.ValueType
MEMBERS: tuple[tuple[str, str, int, Kind, list[int]], ...] = (  # who, name, born, insurance, fen
    ("father", "张建国", 1975, common_pb2.INSURANCE_TYPE_EMPLOYEE, [20_000] * 5),
    ("mother", "李秀英", 1977, common_pb2.INSURANCE_TYPE_EMPLOYEE, [15_000] * 2),
    ("grandmother", "王桂兰", 1948, common_pb2.INSURANCE_TYPE_RESIDENT, []),
    ("son", "张小明", 2001, common_pb2.INSURANCE_TYPE_EMPLOYEE, [4_500]),
)
PREMIUM_FEN = 40_000
BILL = {"fund": 20_000, "burden": 110_000}


def step(title: str, says: str) -> None:
    show.console.rule(f"[bold]{title}")
    show.console.print(says)


async def _open(c: Client, name: str, born: int, kind: Kind) -> str:
    """A fresh synthetic person of Changsha (another id if one is taken)."""
    for _ in range(10):
        day = dt.date(born, 1, 1) + dt.timedelta(days=random.randrange(365))
        pid = make_person_id(CHANGSHA, day, random.randrange(1000))
        request = apb.OpenAccountRequest(person_id=pid, name=name, insurance_type=kind,
                                         region_code=CHANGSHA, request_id=request_id())  # fmt: skip
        try:
            await c.account.OpenAccount(request)
            return pid
        except GongjiError as e:
            if e.reason != "ACCOUNT_EXISTS":
                raise
    raise RuntimeError("could not find a free synthetic id")


async def family(c: Client) -> dict[str, str]:
    step("1 · The family", "Four accounts in Changsha; the monthly allocations are credited (A1).")
    ids: dict[str, str] = {}
    for who, name, born, kind, months in MEMBERS:
        ids[who] = await _open(c, name, born, kind)
        for month, amount in enumerate(months, start=1):
            await c.account.Credit(apb.CreditRequest(
                person_id=ids[who], amount_fen=amount, kind=apb.CREDIT_KIND_MONTHLY_ALLOCATION,
                memo=f"allocation, month {month}", request_id=request_id(),
            ))  # fmt: skip
    await balances(c, ids, "accounts")
    return ids


async def balances(c: Client, ids: dict[str, str], title: str) -> None:
    found = await c.account.BatchGetAccounts(apb.BatchGetAccountsRequest(person_ids=ids.values()))
    show.console.print(show.accounts(title, found.accounts, names(ids)))


def names(ids: dict[str, str]) -> dict[str, str]:
    return {pid: who for who, pid in ids.items()}


async def consent(ids: dict[str, str]) -> bpb.Binding:
    """The father binds his wife from his app; she says yes from hers (B14)."""
    father, mother = connect("citizen", ids["father"]), connect("citizen", ids["mother"])
    try:
        asked = await father.binding.CreateBinding(bpb.CreateBindingRequest(
            binder_id=ids["father"], beneficiary_id=ids["mother"],
            relationship=common_pb2.RELATIONSHIP_SPOUSE, request_id=request_id(),
        ))  # fmt: skip
        show.console.print(show.bindings("asked from the father's phone", [asked], names(ids)))
        confirmed: bpb.Binding = await mother.binding.ConfirmBinding(bpb.ConfirmBindingRequest(
            binding_id=asked.binding_id, request_id=request_id(),
        ))  # fmt: skip
        return confirmed
    finally:
        await father.close()
        await mother.close()


async def bind(c: Client, ids: dict[str, str]) -> None:
    step("2 · Binding", "The father binds his wife from his phone: she is an adult, so it waits "
         "for her until she confirms it from hers (B14). At the counter, where the papers are "
         "checked, he binds his mother and his son, and the mother binds the son too. A binder "
         "is an employee; relatives are close family (B1–B4).")  # fmt: skip
    made = [await consent(ids)]
    for binder, beneficiary, relationship in (
        ("father", "grandmother", common_pb2.RELATIONSHIP_PARENT),
        ("father", "son", common_pb2.RELATIONSHIP_CHILD),
        ("mother", "son", common_pb2.RELATIONSHIP_CHILD),
    ):
        made.append(await c.binding.CreateBinding(bpb.CreateBindingRequest(
            binder_id=ids[binder], beneficiary_id=ids[beneficiary], relationship=relationship,
            request_id=request_id(),
        )))  # fmt: skip
    show.console.print(show.bindings("bindings", made, names(ids)))
    got = await c.binding.GetPayers(bpb.GetPayersRequest(beneficiary_id=ids["son"]))
    show.console.print(show.payers("who pays for the son, in order", got.payers, names(ids)))


async def premium(c: Client, ids: dict[str, str]) -> None:
    step("3 · A resident premium", "The father pays his mother's resident-insurance premium "
         "for the year from his account (A2).")  # fmt: skip
    paid = await c.settlement.PayResidentPremium(spb.PayResidentPremiumRequest(
        payer_id=ids["father"], beneficiary_id=ids["grandmother"], amount_fen=PREMIUM_FEN,
        year=beijing_today(SystemClock()).year, request_id=request_id(),
    ))  # fmt: skip
    show.console.print(show.premium(paid, names(ids)))


async def pharmacy_bill(pharmacy: Client, ids: dict[str, str]) -> spb.Settlement:
    step("4 · The son at the pharmacy", f"The pharmacy {PHARMACY} settles his bill: his own "
         "account first, then his payers in order, the rest in cash (S2, S12).")  # fmt: skip
    settled: spb.Settlement = await pharmacy.settlement.Settle(spb.SettleRequest(
        institution_id=PHARMACY, medins_setl_id=f"D{uuid.uuid4().hex[:20]}",
        patient_id=ids["son"], credential_type=spb.CREDENTIAL_TYPE_MEDICAL_CODE,
        credential_holder_id=ids["son"], medfee_total_fen=BILL["fund"] + BILL["burden"],
        fund_pay_fen=BILL["fund"], personal_burden_fen=BILL["burden"],
        service_date=beijing_today(SystemClock()).isoformat(),
    ))  # fmt: skip
    show.console.print(show.settlement(settled, names(ids)))
    return settled


async def record(c: Client, ids: dict[str, str]) -> None:
    step("5 · The family's consumption record", "What the father's account paid for: his "
         "relatives' bills appear in his record (S13).")  # fmt: skip
    found = await c.settlement.ListSettlements(spb.ListSettlementsRequest(payer_id=ids["father"]))
    show.console.print(show.settlements("paid from the father's account", found.settlements,
                                        names(ids)))  # fmt: skip
    await balances(c, ids, "accounts after the bill")


async def cancel(pharmacy: Client, c: Client, ids: dict[str, str], settled: spb.Settlement) -> None:
    step("6 · The pharmacy cancels the bill", "Every account leg is refunded to the account it "
         "came from; the cash goes back at the counter (S9).")  # fmt: skip
    cancelled = await pharmacy.settlement.CancelSettlement(spb.CancelSettlementRequest(
        settlement_id=settled.settlement_id, reason="returned medicine", request_id=request_id(),
    ))  # fmt: skip
    show.console.print(show.settlement(cancelled, names(ids)))
    await balances(c, ids, "accounts after the cancel")
    got = await c.account.ListEntries(apb.ListEntriesRequest(person_id=ids["father"]))
    show.console.print(show.entries("the father's ledger", got.entries))


async def play(counter: Client) -> None:
    pharmacy = connect("institution", PHARMACY)
    try:
        ids = await family(counter)
        await bind(counter, ids)
        await premium(counter, ids)
        settled = await pharmacy_bill(pharmacy, ids)
        await record(counter, ids)
        await cancel(pharmacy, counter, ids, settled)
    finally:
        await pharmacy.close()
    show.console.rule("[bold green]done")
