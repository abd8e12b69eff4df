"""Bindings and the creation rules B1-B10 as pure functions over accounts and a policy profile."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from services.common import ids
from services.common.enums import AccountStatus, BindingStatus, InsuranceType
from services.common.errors import DomainError
from services.common.policy import Profile

# Relationship enum number -> policy name ("the beneficiary is the binder's <relationship>").
RELATIONSHIPS = {1: "spouse", 2: "parent", 3: "child", 4: "sibling", 5: "grandparent",
                 6: "grandchild"}  # fmt: skip
# Relationships where the beneficiary must be born strictly earlier (True) or later (False).
_BENEFICIARY_OLDER = {"parent": True, "grandparent": True, "child": False, "grandchild": False}


CONSENT_DAYS = 7  # a binding not confirmed within this many days lapses (B14)
ADULT_AGE = 18


def needs_consent(role: str, beneficiary_id: str, today: dt.date) -> bool:
    """Rule B14: a binding a citizen makes for a relative who is an adult on `today` (Beijing)
    waits for his confirmation. Counter staff (operator) checked the papers, and services act
    for one of them; a parent binds a minor child at once."""
    return role == "citizen" and age_on(beneficiary_id, today) >= ADULT_AGE


def age_on(person_id: str, day: dt.date) -> int:
    """Whole years from the birth date in the id to `day`: one born on 29 February is a year
    older on 1 March of a common year."""
    born = ids.birth_date(person_id)
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


@dataclasses.dataclass(frozen=True)
class Party:
    """What the rules need to know of one side's account."""

    person_id: str
    insurance_type: int
    status: int
    region_code: str
    balance_fen: int
    stopped: bool = False  # insurance stopped (A9)


# A binding's record as Redis keeps it (store.Keys.record): a JSON array of these, in this
# order; its id is its key's. A record kept before in named form (a JSON object) reads the same.
RECORD = ("binder_id", "beneficiary_id", "relationship", "start_date", "end_date", "status",
          "created_ms", "ended_ms", "phone")  # fmt: skip


def record_fields(binding_id: str, kept: Any) -> dict[str, Any]:
    """A kept record (decoded JSON, either form) by name, with its id (a named record's own, so
    that the audit sees one that names another binding)."""
    if isinstance(kept, list):
        return dict(zip(RECORD, kept, strict=False)) | {"binding_id": binding_id}
    return {"binding_id": binding_id} | dict(kept)


@dataclasses.dataclass(frozen=True)
class Binding:
    binding_id: str
    binder_id: str
    beneficiary_id: str
    relationship: int
    start_date: str
    end_date: str
    status: int
    created_ms: int
    ended_ms: int = 0
    priority: int = 0
    phone: str = ""  # the beneficiary's, as given at binding; leaves the service masked only

    def valid_on(self, day: dt.date) -> bool:
        """Rule B9: the window is inclusive at both ends; no end date means open."""
        iso = day.isoformat()
        return self.start_date <= iso and (not self.end_date or iso <= self.end_date)

    @classmethod
    def from_record(cls, binding_id: str, kept: Any, priority: int = 0) -> Binding:
        d = record_fields(binding_id, kept)
        return cls(
            binding_id=d["binding_id"], binder_id=d["binder_id"],
            beneficiary_id=d["beneficiary_id"], relationship=int(d["relationship"]),
            start_date=d["start_date"], end_date=d["end_date"], status=int(d["status"]),
            created_ms=int(d["created_ms"]), ended_ms=int(d.get("ended_ms") or 0),
            priority=priority if int(d["status"]) == BindingStatus.ACTIVE else 0,
            phone=d.get("phone") or "",
        )  # fmt: skip

    def record(self) -> list[Any]:
        return [getattr(self, name) for name in RECORD]


def check_creation(
    binder: Party | None, beneficiary: Party | None, relationship: int, profile: Profile
) -> None:
    """Rules B1, B2, B3, B8, B5, B6 in API.md's order (SELF_BINDING is checked before)."""
    binder, beneficiary = _check_sides(binder, beneficiary)
    name = RELATIONSHIPS[relationship]
    if not profile.allows(name):
        raise DomainError(
            "RELATIONSHIP_NOT_ALLOWED", f"{name} is not a relationship this province allows"
        )
    _check_plausible(binder, beneficiary, name)
    if profile.same_province and ids.province(binder.region_code) != ids.province(
        beneficiary.region_code
    ):
        raise DomainError("CROSS_PROVINCE", "binder and beneficiary are insured in two provinces")
    if binder.balance_fen <= 0:
        raise DomainError("ZERO_BALANCE", "the binder's balance must be above zero to bind")


def check_quota(funder: Party | None, relative: Party | None, relationship: int) -> None:
    """Rule N1 in API.md's order (arguments and SELF_BINDING are checked before; the pair, the
    limit and the funds by the funder's account, with the reservation): the funder as a binder,
    the relative insured, one of the six relationships, plausible. No province rule applies:
    the relative may be insured anywhere."""
    funder, relative = _check_sides(funder, relative)
    name = RELATIONSHIPS.get(relationship)
    if name is None:
        raise DomainError("RELATIONSHIP_NOT_ALLOWED", "the relationship must be a close one")
    _check_plausible(funder, relative, name)


def _check_sides(binder: Party | None, beneficiary: Party | None) -> tuple[Party, Party]:
    """The one who pays: an employee's ACTIVE account, insurance not stopped (B1, A9); the one
    paid for: insured, not CLOSED or TRANSFERRED_OUT (B2)."""
    if binder is None:
        raise DomainError("ACCOUNT_NOT_FOUND", "the binder has no account")
    if binder.insurance_type != InsuranceType.EMPLOYEE:
        raise DomainError("BINDER_NOT_EMPLOYEE", "only employee-insured persons can bind")
    if binder.status == AccountStatus.SUSPENDED:
        raise DomainError("ACCOUNT_SUSPENDED", "the binder's account is suspended")
    if binder.status != AccountStatus.ACTIVE:
        raise DomainError("ACCOUNT_CLOSED", "the binder's account is closed")
    if binder.stopped:
        raise DomainError("INSURANCE_STOPPED", "the binder's insurance is stopped (A9)")
    if beneficiary is None or beneficiary.status not in (
        AccountStatus.ACTIVE,
        AccountStatus.SUSPENDED,
    ):
        raise DomainError("BENEFICIARY_NOT_INSURED", "the beneficiary is not insured")
    return binder, beneficiary


def _check_plausible(binder: Party, beneficiary: Party, name: str) -> None:
    """B8: a parent or grandparent born strictly earlier, a child or grandchild later."""
    if name in _BENEFICIARY_OLDER:
        binder_born = ids.birth_date(binder.person_id)
        beneficiary_born = ids.birth_date(beneficiary.person_id)
        older, younger = (
            (beneficiary_born, binder_born) if _BENEFICIARY_OLDER[name]
            else (binder_born, beneficiary_born)
        )  # fmt: skip
        if not older < younger:
            raise DomainError(
                "IMPLAUSIBLE_RELATIONSHIP", f"a {name} relationship needs the elder born first"
            )


@dataclasses.dataclass(frozen=True)
class Views:
    """One person's views in one province, as read from his hash (store.Keys.person, whose
    fields store.py lists)."""

    binder_all: list[str]  # every binding he made, oldest first
    pairs: dict[str, str]  # beneficiary -> his ACTIVE or PENDING_CONSENT binding of him
    beneficiary_all: list[str]  # every binding of which he is the beneficiary, oldest first
    payers: list[str]  # his ACTIVE bindings as beneficiary, in payer order
    version: int  # of the payer list
    awaiting: list[str]  # bindings made for him that await his consent (B14), oldest first
    funded: list[str]  # aid quotas he granted, in grant order
    granted: list[str]  # aid quotas granted to him, in grant order
    # his ACTIVE quotas as (grant sequence, funder, quota id), oldest first: drawn before his
    # payers (N3)
    drawn: list[tuple[int, str, str]]

    @classmethod
    def parse(cls, fields: dict[str, str]) -> Views:
        def ordered(prefix: str) -> list[str]:
            """The ids of the fields with this prefix, by their value (a time, a priority, a
            grant sequence: its first word)."""
            found = [
                (int(n.split(" ")[0]), f[len(prefix) :])
                for f, n in fields.items() if f.startswith(prefix)
            ]  # fmt: skip
            return [i for _, i in sorted(found)]

        drawn = sorted(
            (int(v.split(" ")[0]), f[2:], v.split(" ")[1])
            for f, v in fields.items() if f.startswith("g:")
        )  # fmt: skip
        return cls(
            ordered("a:"),
            {f[len("pair:"):]: i for f, i in fields.items() if f.startswith("pair:")},
            ordered("e:"), ordered("q:"), int(fields.get("v") or 0), ordered("w:"),
            ordered("fq:"), ordered("rq:"), [(seq, funder, qid) for seq, qid, funder in drawn],
        )  # fmt: skip

    @property
    def binder_active(self) -> set[str]:
        """His bindings as binder that are not over: ACTIVE, or awaiting consent (B4, B7)."""
        return set(self.pairs.values())


# A quota's relationship as the binding service keeps it (store.Keys.quota): who granted whom,
# as what, in which grant order, when. Its money and status are on the funder's account.
QUOTA_RECORD = ("funder_id", "relative_id", "relationship", "seq", "created_ms")


@dataclasses.dataclass(frozen=True)
class QuotaLink:
    quota_id: str
    funder_id: str
    relative_id: str
    relationship: int
    seq: int
    created_ms: int

    @classmethod
    def from_record(cls, quota_id: str, kept: list[Any]) -> QuotaLink:
        funder, relative, relationship, seq, created = kept
        return cls(quota_id, funder, relative, int(relationship), int(seq), int(created))

    def record(self) -> list[Any]:
        return [getattr(self, name) for name in QUOTA_RECORD]
