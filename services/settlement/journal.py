"""The journal: one record per settlement or premium payment, and the point its work resumes
from after a crash (DESIGN "Atomic steps, not steps in a row"). Pure: dataclasses and their
explicit JSON form, no I/O.

    PENDING ──pay──> SETTLED ──cancel──> CANCELLING ──refunds──> CANCELLED
       └──never paid──> ABORTED

A settlement's journal key is derived from (institution_id, medins_setl_id), so the journal is
also the claim of that key; a key reversed before it arrived holds the tombstone REVERSED.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

import orjson

from services.common.enums import LegKind, SettlementStatus

REVERSED = "REVERSED"  # what a reversed key's journal holds (S10)
FORMAT = 1


@dataclasses.dataclass(frozen=True)
class Bill:
    """A validated SettleRequest, defaults applied."""

    institution_id: str
    medins_setl_id: str
    patient_id: str
    credential_type: int
    agent_id: str
    medfee_total_fen: int
    fund_pay_fen: int
    personal_burden_fen: int
    use_personal_account: bool
    use_family_aid: bool
    service_date: str

    @property
    def settlement_id(self) -> str:
        return settlement_id(self.institution_id, self.medins_setl_id)

    def fingerprint(self) -> str:
        """What makes two bills "the same content" (S8): an explicit default equals an unset one."""
        return hashlib.sha256(orjson.dumps(self, option=orjson.OPT_SORT_KEYS)).hexdigest()


def settlement_id(institution_id: str, medins_setl_id: str) -> str:
    """Derived from the key, so every retry of a bill works on the same settlement."""
    return "S" + hashlib.sha256(f"{institution_id}/{medins_setl_id}".encode()).hexdigest()[:24]


@dataclasses.dataclass(frozen=True)
class PremiumOrder:
    """A resident premium paid from one account (A2)."""

    payer_id: str
    beneficiary_id: str
    year: int
    amount_fen: int


@dataclasses.dataclass(frozen=True)
class Leg:
    payer_id: str
    kind: LegKind
    amount_fen: int
    entry_id: str
    balance_after_fen: int


@dataclasses.dataclass(frozen=True)
class Journal:
    payment_id: str  # the settlement id, or a premium's payment id
    status: SettlementStatus
    fp: str
    created_ms: int
    due_ms: int  # when recovery takes over an unfinished journal; the payment's not-after time
    bill: Bill | None = None
    premium: PremiumOrder | None = None
    legs: tuple[Leg, ...] = ()
    settled_ms: int = 0
    cancelled_ms: int = 0
    cancel_reason: str = ""
    cancel_request_id: str = ""

    @property
    def patient_id(self) -> str:
        """Whose bill or premium it is: where the account service keeps the payment's record."""
        if self.bill:
            return self.bill.patient_id
        assert self.premium
        return self.premium.beneficiary_id

    @property
    def acct_pay_fen(self) -> int:
        return sum(leg.amount_fen for leg in self.legs if leg.kind == LegKind.OWN_ACCOUNT)

    @property
    def acct_mulaid_pay_fen(self) -> int:
        return sum(leg.amount_fen for leg in self.legs if leg.kind == LegKind.FAMILY_AID)

    @property
    def cash_pay_fen(self) -> int:
        burden = self.bill.personal_burden_fen if self.bill else 0
        return burden - self.acct_pay_fen - self.acct_mulaid_pay_fen

    def moved(self, status: SettlementStatus, **changes: Any) -> Journal:
        return dataclasses.replace(self, status=status, **changes)

    def to_json(self) -> str:
        """The stored form: the dataclass fields (orjson writes dataclasses natively), legs as
        rows, and the format's number."""
        d = {**self.__dict__, "v": FORMAT,
             "legs": [(g.payer_id, g.kind, g.amount_fen, g.entry_id, g.balance_after_fen)
                      for g in self.legs]}  # fmt: skip
        return orjson.dumps(d).decode()

    @classmethod
    def from_json(cls, raw: str) -> Journal:
        d = orjson.loads(raw)
        if d.pop("v", None) != FORMAT:
            raise ValueError("a journal in an unknown format")
        return cls(
            payment_id=d["payment_id"], status=SettlementStatus(d["status"]), fp=d["fp"],
            created_ms=d["created_ms"], due_ms=d["due_ms"],
            bill=Bill(**d["bill"]) if d["bill"] else None,
            premium=PremiumOrder(**d["premium"]) if d["premium"] else None,
            legs=tuple(Leg(p, LegKind(k), a, e, b) for p, k, a, e, b in d["legs"]),
            settled_ms=d["settled_ms"], cancelled_ms=d["cancelled_ms"],
            cancel_reason=d["cancel_reason"], cancel_request_id=d["cancel_request_id"],
        )  # fmt: skip
