"""A bill and a premium order as the settlement service validated them, and their form in the
payment's record (the `details` the account service keeps with it), and the settlement ids
made from them. Pure, no I/O."""

from __future__ import annotations

import dataclasses
import hashlib
import re
from typing import Any

import orjson

from services.common import ids
from services.common.enums import PremiumKind
from services.common.errors import DomainError


@dataclasses.dataclass(frozen=True)
class Bill:
    """A validated SettleRequest, defaults applied: so an explicit default is the same bill as
    an unset one (S8)."""

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

    def details(self) -> bytes:
        return _compact(self)

    @classmethod
    def from_details(cls, raw: bytes) -> Bill:
        return cls(*_fields(cls, raw))


def _compact(item: object) -> bytes:
    """The fields in their declared order, without their names: kept with every payment's
    record, so its bytes count (docs/BENCHMARKS.md, "Memory")."""
    return orjson.dumps(dataclasses.astuple(item))  # type: ignore[call-overload]


def _fields(cls: type, raw: bytes) -> list[Any]:
    """The fields `_compact` wrote; or, from a record made before it, from their names."""
    found = orjson.loads(raw)
    if isinstance(found, dict):
        return [found[f.name] for f in dataclasses.fields(cls)]
    return list(found)


def settlement_id(institution_id: str, medins_setl_id: str) -> str:
    """Derived from the key (S8), so every retry of a bill is the same settlement."""
    return "S" + hashlib.sha256(f"{institution_id}/{medins_setl_id}".encode()).hexdigest()[:24]


_SETTLEMENT_ID = re.compile(r"S[0-9a-f]{24}")


def given_settlement_id(value: str) -> str:
    """A settlement id a caller gives back: one `settlement_id` could have made, else no
    settlement has it (the account service's other payments are not settlements)."""
    ids.token(value, "settlement_id")
    if not _SETTLEMENT_ID.fullmatch(value):
        raise DomainError("SETTLEMENT_NOT_FOUND", "no such settlement")
    return value


@dataclasses.dataclass(frozen=True)
class PremiumOrder:
    """A premium paid from one source (A2, N5): a resident medical premium, or a long-term-care
    one (kept before kinds: resident medical)."""

    payer_id: str
    beneficiary_id: str
    year: int
    amount_fen: int
    kind: int = PremiumKind.RESIDENT_MEDICAL

    def payment_id(self, request_marker: str) -> str:
        """From the request, so a retry of a request whose answer was lost finds its payment."""
        return "P" + hashlib.sha256(request_marker.encode()).hexdigest()[:24]

    def details(self) -> bytes:
        return _compact(self)

    @classmethod
    def from_details(cls, raw: bytes) -> PremiumOrder:
        return cls(*_fields(cls, raw))
