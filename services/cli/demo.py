"""`gongji demo`: the story of family mutual aid (家庭共济), played against the running stack.

A Changsha employee binds his wife from his phone; she is an adult, so the binding waits until
she confirms it from hers. At the counter he binds his mother and his son. He pays his mother's
resident premium from his account. His son, a young employee with little in his own account, pays
a bill at a designated pharmacy: his own account first, then his father's and his mother's
accounts in their order, the rest in cash. The family reads the consumption record, the pharmacy
cancels the bill, and every account gets its money back. Then, across provinces (N1-N7): the
father sets money aside for his own father, who lives in Xianyang, Shaanxi; the grandfather's
bill at Xianyang's hospital draws on it; the month's clearing statement between the provinces
and the hospital's reconciliation of the day show it as a finance clerk reads them. Each run is
a new family (fresh synthetic ids).
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
XIANYANG_HOSPITAL = "H61040000001"  # 咸阳市中心医院, designated in config/registry.toml
CHANGSHA, XIANYANG = "430102", "610402"
Kind: TypeAlias = common_pb2.InsuranceType.ValueType
# who, name, born, insurance, fen credited, region
MEMBERS: tuple[tuple[str, str, int, Kind, list[int], str], ...] = (
    ("father", "张建国", 1975, common_pb2.INSURANCE_TYPE_EMPLOYEE, [20_000] * 5, CHANGSHA),
    ("mother", "李秀英", 1977, common_pb2.INSURANCE_TYPE_EMPLOYEE, [15_000] * 2, CHANGSHA),
    ("grandmother", "王桂兰", 1948, common_pb2.INSURANCE_TYPE_RESIDENT, [], CHANGSHA),
    ("son", "张小明", 2001, common_pb2.INSURANCE_TYPE_EMPLOYEE, [4_500], CHANGSHA),
    ("grandfather", "张德福", 1949, common_pb2.INSURANCE_TYPE_RESIDENT, [], XIANYANG),
)
QUOTA_FEN = 50_000
XIANYANG_BILL = {"fund": 150_000, "burden": 60_000}
PREMIUM_FEN = 40_000
BILL = {"fund": 20_000, "burden": 110_000}


def step(title: str, says: str) -> None:
    show.console.rule(f"[bold]{title}")
    show.console.print(says)


async def _open(c: Client, name: str, born: int, kind: Kind, region: str) -> str:
    """A fresh synthetic person of the region (another id if one is taken)."""
    for _ in range(10):
        day = dt.date(born, 1, 1) + dt.timedelta(days=random.randrange(365))
        pid = make_person_id(region, day, random.randrange(1000))
        request = apb.OpenAccountRequest(person_id=pid, name=name, insurance_type=kind,
                                         region_code=region, request_id=request_id())  # fmt: skip
        try:
            await c.account.OpenAccount(request)
            return pid
        except GongjiError as e:
            if e.reason != "ACCOUNT_EXISTS":
                raise
    raise RuntimeError("could not find a free synthetic id")


async def family(c: Client) -> dict[str, str]:
    step("1 · The family", "Four accounts in Changsha, and the grandfather's in Xianyang, "
         "Shaanxi; the monthly allocations are credited (A1).")  # fmt: skip
    ids: dict[str, str] = {}
    for who, name, born, kind, months, region in MEMBERS:
        ids[who] = await _open(c, name, born, kind, region)
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


async def across_provinces(counter: Client, hospital: Client, ids: dict[str, str]) -> None:
    step(
        "7 · Across provinces: a quota for the grandfather in Xianyang",
        "At the counter the "
        "father sets ¥500 of his account aside for his own father, insured in Xianyang, "
        "Shaanxi (共济额度, N1, N2). It is still the father's money, but he cannot spend it.",
    )
    quota = await counter.binding.GrantQuota(bpb.GrantQuotaRequest(
        funder_id=ids["father"], relative_id=ids["grandfather"], amount_fen=QUOTA_FEN,
        relationship=common_pb2.RELATIONSHIP_PARENT, request_id=request_id(),
    ))  # fmt: skip
    show.console.print(show.quotas("granted", [quota], names(ids)))
    await balances(counter, {"father": ids["father"]}, "the father's account: ¥500 set aside")
    step("8 · The grandfather at Xianyang's hospital", f"{XIANYANG_HOSPITAL} settles his bill: "
         "his own account (a resident has none), then his quotas, oldest first, then his "
         "payers, the rest in cash (N3). The quota's leg is the father's money.")  # fmt: skip
    settled = await hospital.settlement.Settle(spb.SettleRequest(
        institution_id=XIANYANG_HOSPITAL, medins_setl_id=f"X{uuid.uuid4().hex[:20]}",
        patient_id=ids["grandfather"], credential_type=spb.CREDENTIAL_TYPE_MEDICAL_CODE,
        credential_holder_id=ids["grandfather"],
        medfee_total_fen=XIANYANG_BILL["fund"] + XIANYANG_BILL["burden"],
        fund_pay_fen=XIANYANG_BILL["fund"], personal_burden_fen=XIANYANG_BILL["burden"],
        service_date=beijing_today(SystemClock()).isoformat(),
    ))  # fmt: skip
    show.console.print(show.settlement(settled, names(ids)))
    found = await counter.binding.ListQuotas(bpb.ListQuotasRequest(funder_id=ids["father"]))
    show.console.print(show.quotas("the father's quotas", found.quotas, names(ids)))
    today = beijing_today(SystemClock())
    step("9 · The finance clerks", "Hunan and Shaanxi clear quota money spent across provinces "
         "monthly (清算, N6); the hospital reconciles its day with the centre (对账, N7). Both "
         "are final once the month, or the day, is over.")  # fmt: skip
    statement = await counter.settlement.GetClearingStatement(
        spb.GetClearingStatementRequest(month=f"{today:%Y-%m}"))  # fmt: skip
    show.console.print(show.clearing(statement))
    ours = await hospital.settlement.ReconcileDay(spb.ReconcileDayRequest(
        institution_id=XIANYANG_HOSPITAL, date=today.isoformat()))  # fmt: skip
    theirs = spb.DayTotals()
    theirs.CopyFrom(ours.ours)
    day = await hospital.settlement.ReconcileDay(spb.ReconcileDayRequest(
        institution_id=XIANYANG_HOSPITAL, date=today.isoformat(), totals=theirs))  # fmt: skip
    show.console.print(show.reconciliation(day, compared=True))


async def play(counter: Client) -> None:
    pharmacy = connect("institution", PHARMACY)
    hospital = connect("institution", XIANYANG_HOSPITAL)
    try:
        ids = await family(counter)
        await bind(counter, ids)
        await premium(counter, ids)
        settled = await pharmacy_bill(pharmacy, ids)
        await record(counter, ids)
        await cancel(pharmacy, counter, ids, settled)
        await across_provinces(counter, hospital, ids)
    finally:
        await pharmacy.close()
        await hospital.close()
    show.console.rule("[bold green]done")
