"""The people of a run, drawn from the seed: households of parents, children and grandparents,
some insured as employees and some as residents, in a few provinces; households that share
grandparents on purpose, so that one person's account pays for (and is paid for by) more than
one family. Pure: no I/O."""

from __future__ import annotations

import dataclasses
import datetime as dt
import random

from gongji.common.v1 import common_pb2 as cpb
from services.common.enums import InsuranceType
from services.common.ids import make_person_id

REGIONS = {
    "43": ("430102", "430104", "430602"),
    "61": ("610402", "610102"),
    "52": ("520102",),
    "54": ("540102",),
}
PROVINCE_WEIGHTS = ("43", "43", "43", "61", "52", "54")


@dataclasses.dataclass(frozen=True)
class Person:
    pid: str
    region: str
    born: dt.date
    insurance: int  # InsuranceType at opening
    role: str  # grandparent, parent, child


@dataclasses.dataclass(frozen=True)
class Pair:
    """A binding someone may ask for: the beneficiary is the binder's `relationship`."""

    binder: str
    beneficiary: str
    relationship: int


@dataclasses.dataclass
class Population:
    people: list[Person]
    pairs: list[Pair]  # allowed by the default rules (B3, B8), maybe not by the provinces (B5)
    wrong: list[Pair]  # refused by B3 or B8, or a self-binding
    kin: list[Pair]  # close relatives no binding joins, but an aid quota may (N1)
    spouses: dict[str, str]

    def person(self, pid: str) -> Person:
        return next(p for p in self.people if p.pid == pid)


class _Ids:
    def __init__(self) -> None:
        self.n = 0

    def make(self, region: str, born: dt.date) -> str:
        self.n += 1
        return make_person_id(region, born, self.n % 1000)


def _born(rng: random.Random, first: int, last: int) -> dt.date:
    return dt.date(rng.randint(first, last), rng.randint(1, 12), rng.randint(1, 28))


def populate(rng: random.Random, households: int) -> Population:
    """`households` households; each pair of neighbouring ones shares the grandparents."""
    ids, people, pairs, wrong, kin, spouses = _Ids(), [], [], [], [], {}
    employee, resident = int(InsuranceType.EMPLOYEE), int(InsuranceType.RESIDENT)
    elders: list[list[Person]] = []
    for _ in range((households + 1) // 2):
        region = rng.choice(REGIONS[rng.choice(PROVINCE_WEIGHTS)])
        couple = [
            Person(
                ids.make(region, born),
                region,
                born,
                rng.choice((employee, employee, resident)),
                "grandparent",
            )
            for born in (_born(rng, 1935, 1950), _born(rng, 1936, 1952))
        ]
        elders.append(couple)
        people += couple
        spouses[couple[0].pid], spouses[couple[1].pid] = couple[1].pid, couple[0].pid
    for h in range(households):
        grand = elders[h // 2]
        region = rng.choice(REGIONS[rng.choice(PROVINCE_WEIGHTS)])
        dad_born = _born(rng, 1958, 1972)
        dad = Person(ids.make(region, dad_born), region, dad_born, employee, "parent")
        mum_born = _born(rng, 1960, 1975)
        mum = Person(
            ids.make(region, mum_born),
            region,
            mum_born,
            rng.choice((employee, employee, resident)),
            "parent",
        )
        kids = []
        for _ in range(rng.randint(1, 3)):
            born = _born(rng, 1986, 2015)
            adult_employee = born.year < 1999 and rng.random() < 0.6
            kids.append(
                Person(
                    ids.make(region, born),
                    region,
                    born,
                    employee if adult_employee else resident,
                    "child",
                )
            )
        people += [dad, mum, *kids]
        spouses[dad.pid], spouses[mum.pid] = mum.pid, dad.pid
        pairs += _pairs(dad, mum, kids, grand)
        wrong += _wrong(dad, kids)
        kin += _kin(kids, grand)
    return Population(people, pairs, wrong, kin, spouses)


def _pairs(dad: Person, mum: Person, kids: list[Person], grand: list[Person]) -> list[Pair]:
    spouse, parent, child = cpb.RELATIONSHIP_SPOUSE, cpb.RELATIONSHIP_PARENT, cpb.RELATIONSHIP_CHILD
    found = [Pair(dad.pid, mum.pid, spouse), Pair(mum.pid, dad.pid, spouse)]
    for kid in kids:
        found += [
            Pair(dad.pid, kid.pid, child),
            Pair(mum.pid, kid.pid, child),
            Pair(kid.pid, dad.pid, parent),
            Pair(kid.pid, mum.pid, parent),
        ]
    for g in grand:
        found += [Pair(dad.pid, g.pid, parent), Pair(g.pid, dad.pid, child)]
    return found


def _kin(kids: list[Person], grand: list[Person]) -> list[Pair]:
    found = []
    for kid in kids:
        for g in grand:
            found += [
                Pair(kid.pid, g.pid, cpb.RELATIONSHIP_GRANDPARENT),
                Pair(g.pid, kid.pid, cpb.RELATIONSHIP_GRANDCHILD),
            ]
        found += [Pair(kid.pid, k.pid, cpb.RELATIONSHIP_SIBLING) for k in kids if k is not kid]
    return found


def _wrong(dad: Person, kids: list[Person]) -> list[Pair]:
    found = [Pair(dad.pid, dad.pid, cpb.RELATIONSHIP_CHILD)]
    for kid in kids:
        found.append(Pair(kid.pid, dad.pid, cpb.RELATIONSHIP_CHILD))  # B8: a child born first
    if len(kids) > 1:
        found.append(Pair(kids[0].pid, kids[1].pid, cpb.RELATIONSHIP_SIBLING))  # B3
    return found
