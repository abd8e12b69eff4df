"""Accounts, entries, payments and family-aid grants as the account scripts return them; pure,
no I/O."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from services.common.enums import CreditKind, EntryKind, PaymentState

# A monthly allocation is an ALLOCATION entry, and so on.
ENTRY_KIND_OF_CREDIT = {
    CreditKind.MONTHLY_ALLOCATION: EntryKind.ALLOCATION,
    CreditKind.ADJUSTMENT: EntryKind.ADJUSTMENT,
    CreditKind.TRANSFER_IN: EntryKind.TRANSFER_IN,
}
PAYMENT_KINDS = frozenset({EntryKind.SETTLEMENT, EntryKind.PREMIUM})


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
    stopped_reason: int = 0  # StopReason; 0 while the insurance is not stopped (A9)
    stopped_ms: int = 0
    quota_reserved_fen: int = 0  # set aside for his ACTIVE aid quotas (N2)

    @property
    def available_fen(self) -> int:
        return self.balance_fen - self.held_fen - self.quota_reserved_fen

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
            stopped_reason=int(d.get("stopped_reason") or 0),
            stopped_ms=int(d.get("stopped_ms") or 0),
            quota_reserved_fen=int(d.get("reserved") or 0),
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


_CANCEL = "cancel "


def cancel_reference(payment_id: str) -> str:
    """The reference of the refunds a cancel writes (S9; lua/cancel_payment.lua writes the
    same): they name the payment they undo."""
    return _CANCEL + payment_id


def payment_of(e: Entry) -> str:
    """The payment an entry moves money for, as a watcher sees it (A10): a settlement's or a
    premium's share (its reference is the payment id), or the refund of a cancelled share;
    '' for every other entry (credits, commercial insurance and its refunds, closures)."""
    if e.kind in PAYMENT_KINDS:
        return e.reference
    if e.kind == EntryKind.REFUND and e.reference.startswith(_CANCEL):
        return e.reference[len(_CANCEL) :]
    return ""


@dataclasses.dataclass(frozen=True)
class PaidFor:
    """Whose payment an entry belongs to, as its record (or, while it is made in steps, its
    journal) says: the payment's kind, patient and the details its caller keeps with it."""

    payment_id: str
    kind: int
    patient_id: str
    details: str

    @classmethod
    def from_script(cls, d: dict[str, Any]) -> PaidFor:
        return cls(d["payment_id"], int(d["kind"] or 0), d["patient_id"], d["details"])


@dataclasses.dataclass(frozen=True)
class Source:
    """What may pay for the patient: his own account (no binding), a binder's (under his
    binding), or an aid quota (`quota_id`) its funder (`person_id`) granted him."""

    person_id: str
    binding_id: str = ""
    quota_id: str = ""


@dataclasses.dataclass(frozen=True)
class Share:
    person_id: str
    own_account: bool
    amount_fen: int
    entry_id: str
    balance_after_fen: int
    quota_id: str = ""  # drawn from this aid quota (N3)
    payer_province: str = ""  # a quota share's: its funder's province when paid (N6)


@dataclasses.dataclass(frozen=True)
class Payment:
    """A settlement's or premium's payment and its record (lua/pay.lua)."""

    payment_id: str
    state: PaymentState
    kind: int  # 0 for a reversal's tombstone
    patient_id: str
    shares: tuple[Share, ...]
    details: str  # what the caller keeps with the record
    at_ms: int
    cancelled_ms: int = 0
    cancel_reason: str = ""
    cancel_request_id: str = ""
    institution_id: str = ""  # a settlement's (N6, N7)

    @classmethod
    def from_script(cls, d: dict[str, Any]) -> Payment:
        # cjson writes an empty list as {}: `or ()` reads both.
        shares = tuple(
            Share(s["person_id"], bool(s["own"]), int(s["amount"]), s["entry_id"],
                  int(s["balance_after"]), s.get("quota_id") or "", s.get("province") or "")
            for s in d.get("shares") or ()
        )  # fmt: skip
        return cls(
            d["payment_id"], PaymentState(int(d["state"])), int(d["kind"] or 0),
            d["patient_id"], shares, d["details"], int(d["at_ms"]), int(d["cancelled_ms"]),
            d["cancel_reason"], d["cancel_request_id"], d.get("inst") or "",
        )  # fmt: skip


def grant_fields(binder: str, binding_id: str, kept: Any) -> dict[str, Any]:
    """A grant as the binder's account keeps it, by name: `[beneficiary, start, end, 1|0]`
    (lua/lib.lua `keep_grant`), or the named form of a grant kept before; {} for anything else."""
    if isinstance(kept, list) and len(kept) == 4:
        beneficiary, start, end, active = kept
        return {"binder_id": binder, "beneficiary_id": beneficiary, "binding_id": binding_id,
                "start_date": start, "end_date": end, "active": active == 1}  # fmt: skip
    return kept if isinstance(kept, dict) else {}


@dataclasses.dataclass(frozen=True)
class FamilyAidGrant:
    binder_id: str
    beneficiary_id: str
    binding_id: str
    start_date: str
    end_date: str
    active: bool

    @classmethod
    def from_script(cls, d: dict[str, Any]) -> FamilyAidGrant:
        return cls(
            d["binder_id"], d["beneficiary_id"], d["binding_id"], d["start_date"],
            d["end_date"], bool(d.get("active")),
        )  # fmt: skip


_PLACED = re.compile(r"e[0-9a-f]+\.([0-9]{1,15})")


def place_in_id(entry_id: str) -> int | None:
    """The 1-based ledger place an entry id carries (lib.lua `placed`), or None: an id a
    payment names, or one made before ids carried their place, is found by the entry index."""
    found = _PLACED.fullmatch(entry_id)
    return int(found.group(1)) if found else None


@dataclasses.dataclass(frozen=True)
class Quota:
    """An aid quota as its funder's account keeps it (lua/lib.lua `quota_view`, rules N1-N5)."""

    quota_id: str
    funder_id: str
    relative_id: str
    relationship: int
    granted_fen: int
    used_fen: int
    status: int  # QuotaStatus
    end_reason: int  # QuotaEndReason; 0 unless ENDED
    created_ms: int
    ended_ms: int
    seq: int  # grant order: a relative's quotas are drawn oldest first

    @property
    def remaining_fen(self) -> int:
        return self.granted_fen - self.used_fen

    @classmethod
    def from_script(cls, d: dict[str, Any]) -> Quota:
        return cls(
            d["quota_id"], d["funder_id"], d["relative_id"], int(d["relationship"]),
            int(d["granted"]), int(d["used"]), int(d["status"]), int(d["end_reason"] or 0),
            int(d["created_ms"] or 0), int(d["ended_ms"] or 0), int(d["seq"] or 0),
        )  # fmt: skip

    @classmethod
    def from_kept(cls, funder_id: str, quota_id: str, kept: list[Any]) -> Quota:
        """From the array the funder's account keeps (lib.lua `keep_quota`)."""
        relative, relationship, granted, used, status, reason, created, ended, seq = kept
        return cls(
            quota_id, funder_id, relative, int(relationship), int(granted), int(used),
            int(status), int(reason or 0), int(created or 0), int(ended or 0), int(seq or 0),
        )  # fmt: skip
