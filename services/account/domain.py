"""Accounts, entries and holds as the account scripts return them; pure, no I/O."""

from __future__ import annotations

import dataclasses
from typing import Any

# Enum numbers as in account.proto / common.proto; the scripts store them as strings.
EMPLOYEE, RESIDENT = 1, 2
ACTIVE, SUSPENDED, CLOSED, TRANSFERRED_OUT = 1, 2, 3, 4
ALLOCATION, ADJUSTMENT, TRANSFER_IN = 1, 2, 3
SETTLEMENT, PREMIUM, REFUND, COMMERCIAL_INSURANCE, WITHDRAWAL, TRANSFER_OUT = 4, 5, 6, 7, 8, 9
HOLD_STATES = {"PLACED": 1, "COMMITTED": 2, "VOIDED": 3, "EXPIRED": 4}

# CreditKind -> EntryKind: a monthly allocation is an ALLOCATION entry, and so on.
ENTRY_KIND_OF_CREDIT = {1: ALLOCATION, 2: ADJUSTMENT, 3: TRANSFER_IN}
HOLD_KINDS = frozenset({SETTLEMENT, PREMIUM})


@dataclasses.dataclass(frozen=True)
class Account:
    person_id: str
    name: str
    insurance_type: int
    region_code: str
    status: int
    balance_fen: int
    held_fen: int
    opened_ms: int

    @property
    def available_fen(self) -> int:
        return self.balance_fen - self.held_fen

    @classmethod
    def from_script(cls, d: dict[str, Any]) -> Account:
        return cls(
            person_id=d["person_id"],
            name=d["name"],
            insurance_type=int(d["insurance_type"]),
            region_code=d["region_code"],
            status=int(d["status"]),
            balance_fen=int(d["balance"]),
            held_fen=int(d["held"]),
            opened_ms=int(d["opened_ms"]),
        )


@dataclasses.dataclass(frozen=True)
class Entry:
    entry_id: str
    person_id: str
    kind: int
    amount_fen: int  # signed: + credit, - debit
    balance_after_fen: int
    reference: str
    created_ms: int

    @classmethod
    def from_script(cls, d: dict[str, Any]) -> Entry:
        return cls(
            entry_id=d["entry_id"],
            person_id=d["person_id"],
            kind=int(d["kind"]),
            amount_fen=int(d["amount"]),
            balance_after_fen=int(d["balance_after"]),
            reference=d["reference"],
            created_ms=int(d["created_ms"]),
        )


@dataclasses.dataclass(frozen=True)
class Hold:
    hold_id: str
    person_id: str
    amount_fen: int
    state: int
    expires_ms: int
    placed_now: bool = False

    @classmethod
    def from_script(cls, d: dict[str, Any]) -> Hold:
        return cls(
            hold_id=d["hold_id"],
            person_id=d["person_id"],
            amount_fen=int(d["amount"]),
            state=HOLD_STATES[d["state"]],
            expires_ms=int(d["expires_ms"]),
            placed_now=bool(d.get("placed_now", False)),
        )
