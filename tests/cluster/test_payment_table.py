"""One table of payment cases run over both modes, one Redis (lua/pay.lua: one script) and the
three-master cluster (stepwise.py: the same steps one slot at a time under the family's locks),
and compared field by field: a rule of a payment is written once, so it holds the same way in
both (rules S2-S5, S7, S8, A2, A9; aid quotas N3, N5)."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import pytest

from services.account.domain import Source
from services.account.locks import Locks
from services.account.stepwise import Stepwise
from services.account.store import AccountStore
from services.common.enums import AccountStatus, EntryKind, InsuranceType, StopReason
from services.common.errors import DomainError
from services.common.redisdb import EmbeddedCluster, connect
from tests.support import new_pid

DAY = "2026-06-01"
SETTLE, PREMIUM = EntryKind.SETTLEMENT, EntryKind.PREMIUM


@dataclasses.dataclass(frozen=True)
class Who:
    """A person of a case: his balance and what became of his account."""

    balance: int = 0
    resident: bool = False
    state: str = ""  # suspended | stopped | closed | kept (employee, then resident) | none


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    people: dict[str, Who]  # label -> person; P is the patient
    grants: dict[str, tuple[str, str]]  # payer label -> (start, end) of his grant to P
    sources: list[str]  # labels, in order; "P" = his own account
    amount: int
    kind: int = SETTLE
    expect: tuple[Any, ...] = ()  # ("paid", [(label, amount), ...]) or ("refused", reason)
    quote: bool = False
    twice: bool = False  # paid, then a second payment of the same year (premiums)
    # funder label -> (amount, state: '' ACTIVE | 'ended' | 'pending') of his quota for P;
    # a source `q:<label>` draws on it (N3)
    quotas: dict[str, tuple[int, str]] = dataclasses.field(default_factory=dict)
    mark: str = "2030"  # a premium's: its year, or `ltc:` and its year (N5)


BOUND = ("2000-01-01", "")
CASES = [
    Case("own account pays all", {"P": Who(5_000)}, {}, ["P"], 3_000,
         expect=("paid", [("P", 3_000)])),
    Case("own, then payers in order, then cash", {"P": Who(1_000), "D": Who(2_000),
         "M": Who(5_000)}, {"D": BOUND, "M": BOUND}, ["P", "D", "M"], 9_000,
         expect=("paid", [("P", 1_000), ("D", 2_000), ("M", 5_000)])),
    Case("the rest in cash", {"P": Who(), "D": Who(500)}, {"D": BOUND}, ["P", "D"], 1_000,
         expect=("paid", [("D", 500)])),
    Case("a suspended payer is skipped", {"P": Who(), "D": Who(500, state="suspended"),
         "M": Who(800)}, {"D": BOUND, "M": BOUND}, ["P", "D", "M"], 1_000,
         expect=("paid", [("M", 800)])),
    Case("a stopped payer is skipped", {"P": Who(), "D": Who(500, state="stopped"),
         "M": Who(800)}, {"D": BOUND, "M": BOUND}, ["P", "D", "M"], 600,
         expect=("paid", [("M", 600)])),
    Case("a closed payer is skipped", {"P": Who(), "D": Who(500, state="closed"),
         "M": Who(800)}, {"D": BOUND, "M": BOUND}, ["D", "M"], 600,
         expect=("paid", [("M", 600)])),
    Case("a payer now resident is skipped", {"P": Who(), "D": Who(500, state="kept"),
         "M": Who(800)}, {"D": BOUND, "M": BOUND}, ["D", "M"], 600,
         expect=("paid", [("M", 600)])),
    Case("a payer with no grant is skipped", {"P": Who(), "D": Who(500), "M": Who(800)},
         {"M": BOUND}, ["D", "M"], 600, expect=("paid", [("M", 600)])),
    Case("a grant not yet begun or already over pays nothing", {"P": Who(), "D": Who(500),
         "M": Who(800), "G": Who(300)}, {"D": ("2026-06-02", ""),
         "M": ("2000-01-01", "2026-05-31"), "G": ("2026-06-01", "2026-06-01")},
         ["D", "M", "G"], 600, expect=("paid", [("G", 300)])),
    Case("a payer with no account is skipped", {"P": Who(), "D": Who(state="none"),
         "M": Who(800)}, {"M": BOUND}, ["D", "M"], 600, expect=("paid", [("M", 600)])),
    Case("nothing to pay", {"P": Who(100)}, {}, ["P"], 0, expect=("paid", [])),
    Case("a suspended patient", {"P": Who(100, state="suspended")}, {}, ["P"], 50,
         expect=("refused", "ACCOUNT_SUSPENDED")),
    Case("a closed patient", {"P": Who(100, state="closed")}, {}, ["P"], 50,
         expect=("refused", "ACCOUNT_CLOSED")),
    Case("a stopped patient", {"P": Who(100, state="stopped")}, {}, ["P"], 50,
         expect=("refused", "INSURANCE_STOPPED")),
    Case("an unknown patient", {"P": Who(state="none")}, {}, ["P"], 50,
         expect=("refused", "ACCOUNT_NOT_FOUND")),
    Case("a source listed twice", {"P": Who(), "D": Who(500)}, {"D": BOUND}, ["D", "D"], 50,
         expect=("refused", "INVALID_ARGUMENT")),
    Case("a quote moves nothing", {"P": Who(100), "D": Who(500)}, {"D": BOUND}, ["P", "D"],
         300, quote=True, expect=("quoted", [("P", 100), ("D", 200)])),
    Case("a premium from a binder", {"P": Who(resident=True), "D": Who(500)}, {"D": BOUND},
         ["D"], 400, PREMIUM, expect=("paid", [("D", 400)])),
    Case("a premium from the resident's own kept account", {"P": Who(900, state="kept")}, {},
         ["P"], 400, PREMIUM, expect=("paid", [("P", 400)])),
    Case("a premium one account cannot pay whole", {"P": Who(resident=True), "D": Who(300)},
         {"D": BOUND}, ["D"], 400, PREMIUM, expect=("refused", "INSUFFICIENT_FUNDS")),
    Case("a premium for an employee", {"P": Who(), "D": Who(500)}, {"D": BOUND}, ["D"], 400,
         PREMIUM, expect=("refused", "BENEFICIARY_NOT_RESIDENT")),
    Case("a premium from an unbound payer", {"P": Who(resident=True), "D": Who(500)}, {},
         ["D"], 400, PREMIUM, expect=("refused", "NOT_BOUND")),
    Case("a premium from a suspended payer", {"P": Who(resident=True),
         "D": Who(500, state="suspended")}, {"D": BOUND}, ["D"], 400, PREMIUM,
         expect=("refused", "ACCOUNT_SUSPENDED")),
    Case("a premium for a beneficiary who moved out", {"P": Who(resident=True, state="closed"),
         "D": Who(500)}, {"D": BOUND}, ["D"], 400, PREMIUM,
         expect=("refused", "ACCOUNT_CLOSED")),
    Case("a premium for a suspended beneficiary", {"P": Who(resident=True, state="suspended"),
         "D": Who(500)}, {"D": BOUND}, ["D"], 400, PREMIUM,
         expect=("refused", "ACCOUNT_SUSPENDED")),
    Case("a second premium of the year", {"P": Who(resident=True), "D": Who(900)},
         {"D": BOUND}, ["D"], 400, PREMIUM, twice=True,
         expect=("refused", "PREMIUM_ALREADY_PAID")),
    Case("own, then a quota, then payers, then cash", {"P": Who(1_000), "F": Who(5_000),
         "D": Who(500)}, {"D": BOUND}, ["P", "q:F", "D"], 4_000, quotas={"F": (2_000, "")},
         expect=("paid", [("P", 1_000), ("F", 2_000), ("D", 500)])),
    Case("a quota and a family-aid share from one person", {"P": Who(), "F": Who(3_000)},
         {"F": BOUND}, ["q:F", "F"], 2_500, quotas={"F": (1_000, "")},
         expect=("paid", [("F", 1_000), ("F", 1_500)])),
    Case("a quota pays what remains of it, whatever is available", {"P": Who(),
         "F": Who(1_000)}, {"F": BOUND}, ["q:F", "F"], 1_500, quotas={"F": (1_000, "")},
         expect=("paid", [("F", 1_000)])),
    Case("an ended quota pays nothing", {"P": Who(), "F": Who(1_000)}, {}, ["q:F"], 500,
         quotas={"F": (800, "ended")}, expect=("paid", [])),
    Case("a quota awaiting consent pays nothing", {"P": Who(), "F": Who(1_000)}, {},
         ["q:F"], 500, quotas={"F": (800, "pending")}, expect=("paid", [])),
    Case("a suspended funder's quota is skipped", {"P": Who(),
         "F": Who(1_000, state="suspended")}, {}, ["q:F"], 500, quotas={"F": (800, "")},
         expect=("paid", [])),
    Case("a quota listed twice", {"P": Who(), "F": Who(1_000)}, {}, ["q:F", "q:F"], 500,
         quotas={"F": (800, "")}, expect=("refused", "INVALID_ARGUMENT")),
    Case("a quote shows the quota's share", {"P": Who(100), "F": Who(1_000)}, {},
         ["P", "q:F"], 600, quotas={"F": (800, "")}, quote=True,
         expect=("quoted", [("P", 100), ("F", 500)])),
    Case("a long-term-care premium from a quota", {"P": Who(), "F": Who(1_000)}, {},
         ["q:F"], 400, PREMIUM, quotas={"F": (500, "")}, mark="ltc:2030",
         expect=("paid", [("F", 400)])),
    Case("a premium the quota does not cover takes the binding", {"P": Who(resident=True),
         "F": Who(1_000)}, {"F": BOUND}, ["q:F", "F"], 400, PREMIUM, quotas={"F": (300, "")},
         expect=("paid", [("F", 400)])),
    Case("a premium from a suspended funder's quota", {"P": Who(resident=True),
         "F": Who(1_000, state="suspended")}, {"F": BOUND}, ["q:F", "F"], 400, PREMIUM,
         quotas={"F": (500, "")}, expect=("refused", "ACCOUNT_SUSPENDED")),
]  # fmt: skip


@pytest.fixture
async def stores(redis_url: str, cluster: EmbeddedCluster) -> AsyncIterator[dict[str, Any]]:
    single, clustered = connect(redis_url), connect(cluster.url, mode="cluster")
    one, many = AccountStore(single), AccountStore(clustered)
    yield {"one Redis": (one, one.pay), "Redis Cluster": (many, _steps(many).pay)}
    await single.aclose()
    await clustered.aclose()


def _steps(store: AccountStore) -> Stepwise:
    return Stepwise(store, Locks(store, 5_000), 30_000)


async def _world(store: AccountStore, case: Case, ids: dict[str, str]) -> None:
    for label, who in case.people.items():
        pid = ids[label]
        if who.state == "none":
            continue
        resident = who.resident and who.state != "kept"
        kind = InsuranceType.RESIDENT if resident else InsuranceType.EMPLOYEE
        await store.open(pid, label, kind, "430102", "", "")
        if who.balance:
            await store.credit(pid, who.balance, EntryKind.ALLOCATION, "m", "", "")
        if label in case.quotas:
            amount, state = case.quotas[label]
            quota_id = f"Q-{ids[label]}"
            await store.open_quota(pid, quota_id, ids["P"], 1, amount, 10, state == "pending", 1,
                                   1, "0")  # fmt: skip
            if state == "ended":
                await store.close_quota(pid, quota_id, 1, False, "", 0, 0, 0, "0")
        await _become(store, pid, who.state)
    for label, (start, end) in case.grants.items():
        await store.grant(ids[label], ids["P"], f"B-{ids[label]}", start, end)


async def _become(store: AccountStore, pid: str, state: str) -> None:
    if state == "suspended":
        await store.set_status(pid, AccountStatus.SUSPENDED, "fraud", "", "")
    elif state == "stopped":
        await store.stop(pid, StopReason.EMIGRATION, "", "")
    elif state == "kept":
        await store.change_type(pid, InsuranceType.RESIDENT, "", "")
    elif state == "closed":
        await store.close(pid, AccountStatus.TRANSFERRED_OUT, EntryKind.TRANSFER_OUT, "610400",
                          "0", None, "", "")  # fmt: skip


async def _run(store: AccountStore, pay: Any, case: Case, ids: dict[str, str]) -> tuple[Any, ...]:
    """The case's outcome in labels: what was paid (each share's payer, own, amount and
    balance after), or the refusal; and every balance afterwards."""
    await _world(store, case, ids)
    label = {pid: name for name, pid in ids.items()}
    sources = [
        Source(ids[s[2:]], "", f"Q-{ids[s[2:]]}") if s.startswith("q:")
        else Source(ids[s], "" if s == "P" else f"B-{ids[s]}")
        for s in case.sources
    ]  # fmt: skip

    async def once(payment_id: str) -> Any:
        return await pay(payment_id, case.kind, ids["P"], sources, case.amount, DAY, case.quote,
                         "fp", premium=case.mark)  # fmt: skip

    try:
        if case.twice:
            await once(f"{ids['P']}-first")
        made = await once(f"{ids['P']}-pay")
        if not case.quote:
            assert await once(f"{ids['P']}-pay") == made  # a retry answers the same (S8)
        outcome: tuple[Any, ...] = (
            "quoted" if case.quote else "paid",
            [(label[s.person_id], s.own_account, s.amount_fen, s.balance_after_fen)
             for s in made.shares],
        )  # fmt: skip
    except DomainError as e:
        outcome = ("refused", e.reason)
    balances = {}
    for name, pid in ids.items():
        if case.people[name].state != "none":
            a = await store.get(pid)
            used = [q.used_fen for q in await store.quotas([(pid, f"Q-{pid}")])]
            balances[name] = (a.balance_fen, a.quota_reserved_fen, used)
    return outcome, balances


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_a_payment_case_comes_out_the_same_in_both_modes(stores, case):
    ids = {label: new_pid() for label in case.people}
    outcomes = {mode: await _run(store, pay, case, ids) for mode, (store, pay) in stores.items()}
    one, cluster = outcomes["one Redis"], outcomes["Redis Cluster"]
    assert one == cluster, outcomes
    (kind, paid), _ = one
    expected_kind, expected = case.expect
    assert kind == expected_kind
    if kind == "refused":
        assert paid == expected
    else:
        assert [(who, amount) for who, _, amount, _ in paid] == expected
