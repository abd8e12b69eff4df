"""Validation of the identifiers and values every service accepts (docs/RULES.md I1-I3, API.md
limits).

Pure functions: each returns the normalised value or raises a DomainError with the reason of
API.md. Messages never contain a raw person id (I3).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence

from services.common.errors import DomainError

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"
# Province-level codes (GB/T 2260): the first two digits of a region code.
PROVINCES = frozenset(
    {11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46}
    | {50, 51, 52, 53, 54, 61, 62, 63, 64, 65, 71, 81, 82}
)
MAX_AMOUNT_FEN = 10**12
MAX_TEXT = 256
MAX_ITEMS = 100
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
_PRINTABLE_ASCII = re.compile(r"[\x20-\x7e]+")
_INSTITUTION = re.compile(r"[HP][0-9]{11}")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_PHONE = re.compile(r"1[3-9][0-9]{9}")
# What free text (names, memos, reasons) may not hold: C0 and C1 controls, DEL, and the bidi
# embeddings, overrides and isolates that make a text read differently from what it is.
_UNSAFE_TEXT = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def check_character(first17: str) -> str:
    """ISO 7064 MOD 11-2 check character over the first 17 digits (rule I2)."""
    total = sum(int(c) * w for c, w in zip(first17, _WEIGHTS, strict=True))
    return _CHECK[total % 11]


def mask(person_id: str) -> str:
    """`4301**********1234`: how a person id appears in logs and messages (rule I3)."""
    if len(person_id) <= 8:
        return "*" * len(person_id)
    return person_id[:4] + "*" * (len(person_id) - 8) + person_id[-4:]


def phone(value: str, field: str = "beneficiary_phone") -> str:
    """A mainland mobile number: 11 digits, 1 then 3-9 (CreateBinding's `beneficiary_phone`).
    The refusal never repeats what was sent: it may be a real number."""
    if not _PHONE.fullmatch(value):
        raise DomainError("INVALID_PHONE", f"{field} must be a mainland mobile number: 11 digits, "
                          "starting 13-19")  # fmt: skip
    return value


def mask_phone(number: str) -> str:
    """`138****5678`: the only form in which a stored phone number leaves the service."""
    return f"{number[:3]}****{number[-4:]}" if number else ""


def birth_date(person_id: str) -> dt.date:
    """The birth date inside a valid id (rule I1)."""
    return dt.date(int(person_id[6:10]), int(person_id[10:12]), int(person_id[12:14]))


def person_id(value: str, today: dt.date, field: str = "person_id") -> str:
    """A valid 18-character resident id, `x` normalised to `X` (rules I1, I2)."""
    pid = value.upper() if isinstance(value, str) else ""
    bad = DomainError("INVALID_PERSON_ID", f"{field} is not a valid resident ID number")
    if len(pid) != 18 or not pid[:17].isdigit() or not pid[:17].isascii():
        raise bad
    if int(pid[:2]) not in PROVINCES:
        raise bad
    try:
        born = birth_date(pid)
    except ValueError:
        raise bad from None
    if born.year < 1900 or born > today:
        raise bad
    if check_character(pid[:17]) != pid[17]:
        raise DomainError("INVALID_PERSON_ID", f"{field} has a wrong check character")
    return pid


def region_code(value: str, field: str = "region_code") -> str:
    """Six digits whose first two are a province-level code."""
    if len(value) != 6 or not value.isdigit() or not value.isascii():
        raise DomainError("INVALID_REGION_CODE", f"{field} must be 6 digits")
    if int(value[:2]) not in PROVINCES:
        raise DomainError("INVALID_REGION_CODE", f"{field} has an unknown province code")
    return value


def province(region: str) -> str:
    return region[:2]


def amount(value: int, field: str = "amount_fen", allow_zero: bool = False) -> int:
    """An amount in fen: 0 < x <= 10^12 (or 0 <= x when allow_zero)."""
    low_ok = value >= 0 if allow_zero else value > 0
    if not low_ok or value > MAX_AMOUNT_FEN:
        bound = "0 <=" if allow_zero else "0 <"
        raise DomainError("INVALID_AMOUNT", f"{field} must be {bound} x <= {MAX_AMOUNT_FEN} fen")
    return value


def text(value: str, field: str, required: bool = True, max_len: int = MAX_TEXT) -> str:
    if required and not value.strip():
        raise DomainError("INVALID_ARGUMENT", f"{field} is required")
    if len(value) > max_len:
        raise DomainError("INVALID_ARGUMENT", f"{field} is longer than {max_len} characters")
    if _UNSAFE_TEXT.search(value):
        raise DomainError("INVALID_ARGUMENT", f"{field} holds control characters or bidi overrides")
    return value


def token(value: str, field: str, max_len: int = 64) -> str:
    """An id chosen by the caller: 1..max_len printable ASCII characters."""
    if not value:
        raise DomainError("INVALID_ARGUMENT", f"{field} is required")
    if len(value) > max_len or not _PRINTABLE_ASCII.fullmatch(value):
        raise DomainError(
            "INVALID_ARGUMENT", f"{field} must be 1-{max_len} printable ASCII characters"
        )
    return value


def request_id(value: str) -> str:
    return token(value, "request_id", 64)


def institution_id(value: str) -> str:
    if not _INSTITUTION.fullmatch(value):
        raise DomainError("INVALID_ARGUMENT", "institution_id must be H or P and 11 digits")
    return value


def date(value: str, field: str) -> dt.date:
    """A `YYYY-MM-DD` date."""
    if not _DATE.fullmatch(value):
        raise DomainError("INVALID_DATE", f"{field} must be YYYY-MM-DD")
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise DomainError("INVALID_DATE", f"{field} must be YYYY-MM-DD") from None


def month(value: str, field: str) -> dt.date:
    """A `YYYY-MM` month, as its first day."""
    if not _DATE.fullmatch(f"{value}-01"):
        raise DomainError("INVALID_DATE", f"{field} must be YYYY-MM")
    try:
        return dt.date.fromisoformat(f"{value}-01")
    except ValueError:
        raise DomainError("INVALID_DATE", f"{field} must be YYYY-MM") from None


def items(values: Sequence[object], field: str) -> None:
    if not values:
        raise DomainError("INVALID_ARGUMENT", f"{field} must not be empty")
    if len(values) > MAX_ITEMS:
        raise DomainError("INVALID_ARGUMENT", f"{field} holds more than {MAX_ITEMS} items")


def page_token(value: str, limit: int = 10**12) -> int:
    """A page token this service gave: ASCII digits for a number 0..limit."""
    if not (0 < len(value) <= len(str(limit)) and value.isascii() and value.isdigit()):
        raise DomainError("INVALID_ARGUMENT", "page_token is not one this service gave")
    number = int(value)
    if number > limit:
        raise DomainError("INVALID_ARGUMENT", "page_token is not one this service gave")
    return number


def date_between(value: str, field: str, first: dt.date, last: dt.date) -> dt.date:
    """A `YYYY-MM-DD` date from `first` to `last`, both inclusive."""
    day = date(value, field)
    if not first <= day <= last:
        raise DomainError("INVALID_DATE", f"{field} must be from {first} to {last}")
    return day


def page_size(value: int) -> int:
    if value < 0 or value > MAX_PAGE_SIZE:
        raise DomainError("INVALID_ARGUMENT", f"page_size must be 0..{MAX_PAGE_SIZE}")
    return value or DEFAULT_PAGE_SIZE


def enum_value(value: int, known: set[int] | frozenset[int], field: str) -> int:
    """A set, known enum value (proto3 keeps unknown numbers; we refuse them)."""
    if value not in known:
        raise DomainError("INVALID_ARGUMENT", f"{field} is unset or unknown")
    return value


def make_person_id(region: str, born: dt.date, sequence: int) -> str:
    """A valid id for the given region, birth date and 3-digit sequence (tools and tests)."""
    first17 = f"{region}{born:%Y%m%d}{sequence:03d}"
    return first17 + check_character(first17)
