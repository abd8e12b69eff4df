"""The waterfall (rules S2-S4): who pays how much of a personal burden. Pure, no I/O.

Own account first, then the family payers in their priority order, each up to what is available
to him, and the rest in cash. Priority order (who pays first) is not the lock order (sorted ids).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

OWN_ACCOUNT, FAMILY_AID = 1, 2  # LegKind


@dataclasses.dataclass(frozen=True)
class Source:
    """An account that may pay: the patient's own or a payer's, with what it has available."""

    person_id: str
    kind: int
    available_fen: int


@dataclasses.dataclass(frozen=True)
class Share:
    person_id: str
    kind: int
    amount_fen: int


@dataclasses.dataclass(frozen=True)
class Plan:
    burden_fen: int
    shares: tuple[Share, ...]

    @property
    def acct_pay_fen(self) -> int:
        return sum(s.amount_fen for s in self.shares if s.kind == OWN_ACCOUNT)

    @property
    def acct_mulaid_pay_fen(self) -> int:
        return sum(s.amount_fen for s in self.shares if s.kind == FAMILY_AID)

    @property
    def cash_pay_fen(self) -> int:
        return self.burden_fen - self.acct_pay_fen - self.acct_mulaid_pay_fen


def waterfall(burden_fen: int, sources: Sequence[Source]) -> Plan:
    """Split `burden_fen` over `sources` in the order given; sources with nothing pay nothing."""
    if burden_fen < 0:
        raise ValueError("the burden is never negative")
    left, shares = burden_fen, []
    for source in sources:
        if left == 0:
            break
        amount = min(left, max(0, source.available_fen))
        if amount:
            shares.append(Share(source.person_id, source.kind, amount))
            left -= amount
    return Plan(burden_fen, tuple(shares))
