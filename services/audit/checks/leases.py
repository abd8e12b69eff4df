"""Invariant 3: nothing stays in flight. A request's claim (services.common.idempotency) stands
while the request runs and is released, answered or lapses with its lease (at most a minute).
One that will never lapse, or has stood untouched past the recovery window, holds every retry of
its request back for good. (Account locks and payments being made: checks/accounts.py and
checks/payments.py.)"""

from __future__ import annotations

from services.audit.model import RequestRecord, Violation, violation

NO_EXPIRY, GONE = -1, -2  # what PTTL answers for a key without expiry, and for none


def check_request(r: RequestRecord, recovery_after_ms: int) -> list[Violation]:
    """A claim is a record without a response. Its age is at least its idle time (Redis's
    OBJECT IDLETIME: since it was last read or written, read before the audit touches it), so
    a claim idle past the window is certainly older than the window."""
    if r.ttl_ms == GONE or "response" in r.value:
        return []
    if not r.value:
        return [violation("request.stuck", r.key, "unreadable: every retry of it fails")]
    if r.ttl_ms == NO_EXPIRY:
        return [violation("request.stuck", r.key, "claimed without a lease: never released")]
    if r.idle_s is not None and r.idle_s * 1000 > recovery_after_ms:
        detail = (f"claimed and untouched for {r.idle_s} s, past the recovery window of "
                  f"{recovery_after_ms / 1000:g} s")  # fmt: skip
        return [violation("request.stuck", r.key, detail)]
    return []
