"""A watch's cursor (WatchPayments, rule A10): where in one person's ledger an event stands.

`w1.<position>.<tag>`: the event's ledger position (1 = the first entry; the start of a stream
over an empty ledger is 0), and a tag of the person id, so that a cursor from one person's
stream is refused on another's instead of resuming there at a position that means nothing.
Callers treat it as opaque; `w1` names this form, so another can follow without the old ones
failing. Pure, no I/O.
"""

from __future__ import annotations

import hashlib
import re

from services.common.errors import DomainError

START_HEADER = "gongji-cursor"  # a stream's response header: the cursor of its start
_FORM = re.compile(r"w1\.(0|[1-9][0-9]{0,17})\.([0-9a-f]{12})")


def cursor(person_id: str, position: int) -> str:
    return f"w1.{position}.{_tag(person_id)}"


def position(value: str, person_id: str) -> int:
    """The ledger position a cursor given back by a caller resumes after."""
    found = _FORM.fullmatch(value)
    if not found:
        raise DomainError(
            "INVALID_ARGUMENT", "cursor is not one this service gave: pass an event's cursor "
            "as it came, or none to start now",
        )  # fmt: skip
    if found[2] != _tag(person_id):
        raise DomainError("INVALID_ARGUMENT", "cursor belongs to another person's watch")
    return int(found[1])


def _tag(person_id: str) -> str:
    return hashlib.sha256(f"gongji-watch/{person_id}".encode()).hexdigest()[:12]
