"""The audit's checks: pure functions from the records one subject's keys hold (a bundle of
services.audit.model, read by services.audit.scan) to the violations of the invariants.
No I/O; every person id in a violation is masked."""

from services.audit.checks.accounts import (
    check_account,
    granted_bindings,
    parsed_entries,
    payment_references,
)
from services.audit.checks.bindings import check_person, check_record
from services.audit.checks.leases import check_request
from services.audit.checks.payments import check_payment, premium_year

__all__ = [
    "check_account",
    "check_payment",
    "check_person",
    "check_record",
    "check_request",
    "granted_bindings",
    "parsed_entries",
    "payment_references",
    "premium_year",
]
