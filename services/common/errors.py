"""Domain errors and the one table that maps each reason to its gRPC status code (API.md).

Pure: the code is named here and turned into a `grpc.StatusCode` at the edge (rpc.py).
"""

from __future__ import annotations

_CODES: dict[str, tuple[str, ...]] = {
    "INVALID_ARGUMENT": (
        "INVALID_PERSON_ID",
        "INVALID_REGION_CODE",
        "INVALID_AMOUNT",
        "INVALID_DATE",
        "INVALID_PHONE",
        "INVALID_ARGUMENT",
    ),
    "NOT_FOUND": (
        "ACCOUNT_NOT_FOUND",
        "BINDING_NOT_FOUND",
        "SETTLEMENT_NOT_FOUND",
        "POLICY_NOT_FOUND",
        "AUTO_PAY_NOT_FOUND",
        "ENTRY_NOT_FOUND",
        "QUOTA_NOT_FOUND",
    ),
    "ALREADY_EXISTS": ("ACCOUNT_EXISTS", "IDEMPOTENCY_CONFLICT", "CONTRIBUTION_EXISTS"),
    "FAILED_PRECONDITION": (
        "NO_PERSONAL_ACCOUNT",
        "NOT_EMPLOYEE",
        "BINDER_NOT_EMPLOYEE",
        "BENEFICIARY_NOT_INSURED",
        "RELATIONSHIP_NOT_ALLOWED",
        "SELF_BINDING",
        "IMPLAUSIBLE_RELATIONSHIP",
        "BINDING_EXISTS",
        "BINDING_LIMIT_REACHED",
        "CROSS_PROVINCE",
        "ZERO_BALANCE",
        "NOT_BOUND",
        "INSUFFICIENT_FUNDS",
        "ACCOUNT_SUSPENDED",
        "ACCOUNT_CLOSED",
        "ALREADY_CANCELLED",
        "SETTLEMENT_NOT_SETTLED",
        "SETTLEMENT_ABORTED",
        "SETTLEMENT_REVERSED",
        "PREMIUM_ALREADY_PAID",
        "BENEFICIARY_NOT_RESIDENT",
        "COMMERCIAL_LIMIT_EXCEEDED",
        "WITHDRAWAL_NOT_ALLOWED",
        "POLICY_NO_IN_USE",
        "INSURER_NOT_PARTNER",
        "INSURANCE_STOPPED",
        "INSURANCE_NOT_STOPPED",
        "QUOTA_EXISTS",
        "QUOTA_LIMIT_REACHED",
        "QUOTA_BELOW_USED",
        "QUOTA_ENDED",
    ),
    "PERMISSION_DENIED": ("CREDENTIAL_MISMATCH", "PERMISSION_DENIED", "INSTITUTION_NOT_DESIGNATED"),
    "UNAUTHENTICATED": ("UNAUTHENTICATED",),
    "ABORTED": ("LOCK_TIMEOUT", "SETTLEMENT_IN_PROGRESS", "REQUEST_IN_PROGRESS"),
    "UNAVAILABLE": ("DEPENDENCY_UNAVAILABLE", "SERVER_DRAINING"),
    "INTERNAL": ("INTERNAL",),
}

STATUS_OF_REASON: dict[str, str] = {
    reason: code for code, reasons in _CODES.items() for reason in reasons
}

ERROR_DOMAIN = "gongji"


class DomainError(Exception):
    """A refused request. `reason` is one of API.md's reasons; the message never holds a raw id."""

    def __init__(self, reason: str, message: str) -> None:
        if reason not in STATUS_OF_REASON:
            raise ValueError(f"unknown error reason {reason!r}")
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message

    @property
    def code(self) -> str:
        """The name of the gRPC status code, e.g. `FAILED_PRECONDITION`."""
        return STATUS_OF_REASON[self.reason]
