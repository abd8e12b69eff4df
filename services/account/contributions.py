"""Contribution months (rule A8), pure: the checks of one month's record and the summary of a
person's months (total, in this city, full years, gaps). No I/O.

A month is `YYYY-MM`. The allocation of a month to the personal account is the province
policy's share of its base (services.common.policy, `allocation_basis_points`), credited once
by the account script that records the month (lua/contribute.lua).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import re
from collections.abc import Mapping
from typing import Any

from services.common.enums import ContributionPayer
from services.common.errors import DomainError
from services.common.ids import MAX_AMOUNT_FEN

FIRST_MONTH = "1998-12"  # the employee medical insurance began (国发〔1998〕44号)
_MONTH = re.compile(r"[0-9]{4}-(0[1-9]|1[0-2])")


def month(value: str, today: dt.date) -> str:
    """A month from FIRST_MONTH to this month; INVALID_DATE otherwise."""
    if not _MONTH.fullmatch(value) or not FIRST_MONTH <= value <= f"{today:%Y-%m}":
        raise DomainError(
            "INVALID_DATE", f"month must be YYYY-MM from {FIRST_MONTH} to {today:%Y-%m}"
        )
    return value


def amounts(base: int, employee: int, employer: int, payer: int) -> None:
    """A positive base; shares of at least zero with a positive sum; a flexibly employed
    person pays alone (no employer share)."""
    if payer not in set(ContributionPayer):
        raise DomainError("INVALID_ARGUMENT", "payer must be EMPLOYER or FLEXIBLE_EMPLOYMENT")
    if not 0 < base <= MAX_AMOUNT_FEN:
        raise DomainError("INVALID_AMOUNT", f"base_fen must be 1..{MAX_AMOUNT_FEN}")
    if not (0 <= employee <= MAX_AMOUNT_FEN and 0 <= employer <= MAX_AMOUNT_FEN):
        raise DomainError(
            "INVALID_AMOUNT", f"employee_fen, employer_fen must be 0..{MAX_AMOUNT_FEN}"
        )
    if employee + employer <= 0:
        raise DomainError("INVALID_AMOUNT", "employee_fen + employer_fen must be positive")
    if payer == ContributionPayer.FLEXIBLE_EMPLOYMENT and employer:
        raise DomainError(
            "INVALID_AMOUNT", "a flexible-employment contribution has no employer_fen"
        )


@dataclasses.dataclass(frozen=True)
class Contribution:
    person_id: str
    month: str
    base_fen: int
    employee_fen: int
    employer_fen: int
    payer: int
    region_code: str
    allocation_fen: int
    allocation_entry_id: str
    back_payment: bool
    recorded_ms: int

    @classmethod
    def from_script(cls, d: Mapping[str, Any]) -> Contribution:
        return cls(
            person_id=d["person_id"], month=d["month"], base_fen=int(d["base_fen"]),
            employee_fen=int(d["employee_fen"]), employer_fen=int(d["employer_fen"]),
            payer=int(d["payer"]), region_code=d["region_code"],
            allocation_fen=int(d["allocation_fen"]),
            allocation_entry_id=d.get("allocation_entry_id") or "",
            back_payment=bool(d["back_payment"]), recorded_ms=int(d["recorded_ms"]),
        )  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Summary:
    total_months: int = 0
    local_months: int = 0
    full_years: int = 0
    first_month: str = ""
    last_month: str = ""
    gaps: tuple[tuple[str, str], ...] = ()


def summary(months: Mapping[str, str], city_region: str) -> Summary:
    """`months`: month -> the region it was paid in. Local months are those paid in the city
    of `city_region` (the same first four digits); gaps are the maximal runs of months missing
    between the first and the last, oldest first."""
    if not months:
        return Summary()
    ordered = sorted(_index(m) for m in months)
    gaps = tuple(
        (_month(before + 1), _month(after - 1))
        for before, after in itertools.pairwise(ordered)
        if after - before > 1
    )
    local = sum(1 for region in months.values() if region[:4] == city_region[:4])
    return Summary(len(months), local, len(months) // 12, _month(ordered[0]), _month(ordered[-1]),
                   gaps)  # fmt: skip


def _index(month: str) -> int:
    return int(month[:4]) * 12 + int(month[5:7]) - 1


def _month(index: int) -> str:
    return f"{index // 12:04d}-{index % 12 + 1:02d}"
