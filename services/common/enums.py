"""Every enum number the services store, compare or put in a script, in one place.

The numbers are the protos' (the contract); each service names them from here, and the Lua
scripts get them from `lua_constants`, so no number is written twice.
"""

from __future__ import annotations

import enum

from gongji.account.v1 import account_pb2 as apb
from gongji.binding.v1 import binding_pb2 as bpb
from gongji.common.v1 import common_pb2 as cpb
from gongji.settlement.v1 import settlement_pb2 as spb


class InsuranceType(enum.IntEnum):
    EMPLOYEE = cpb.INSURANCE_TYPE_EMPLOYEE
    RESIDENT = cpb.INSURANCE_TYPE_RESIDENT


class AccountStatus(enum.IntEnum):
    ACTIVE = apb.ACCOUNT_STATUS_ACTIVE
    SUSPENDED = apb.ACCOUNT_STATUS_SUSPENDED
    CLOSED = apb.ACCOUNT_STATUS_CLOSED
    TRANSFERRED_OUT = apb.ACCOUNT_STATUS_TRANSFERRED_OUT


class EntryKind(enum.IntEnum):
    ALLOCATION = apb.ENTRY_KIND_ALLOCATION
    ADJUSTMENT = apb.ENTRY_KIND_ADJUSTMENT
    TRANSFER_IN = apb.ENTRY_KIND_TRANSFER_IN
    SETTLEMENT = apb.ENTRY_KIND_SETTLEMENT
    PREMIUM = apb.ENTRY_KIND_PREMIUM
    REFUND = apb.ENTRY_KIND_REFUND
    COMMERCIAL_INSURANCE = apb.ENTRY_KIND_COMMERCIAL_INSURANCE
    WITHDRAWAL = apb.ENTRY_KIND_WITHDRAWAL
    TRANSFER_OUT = apb.ENTRY_KIND_TRANSFER_OUT


class CreditKind(enum.IntEnum):
    MONTHLY_ALLOCATION = apb.CREDIT_KIND_MONTHLY_ALLOCATION
    ADJUSTMENT = apb.CREDIT_KIND_ADJUSTMENT
    TRANSFER_IN = apb.CREDIT_KIND_TRANSFER_IN


class WithdrawalReason(enum.IntEnum):
    DEATH = apb.WITHDRAWAL_REASON_DEATH
    EMIGRATION = apb.WITHDRAWAL_REASON_EMIGRATION
    ABANDON_EMPLOYEE_INSURANCE = apb.WITHDRAWAL_REASON_ABANDON_EMPLOYEE_INSURANCE


class StopReason(enum.IntEnum):
    """Why insurance was stopped (停保, rule A9); a withdrawal (A4) needs the matching one."""

    DEATH = apb.STOP_REASON_DEATH
    EMIGRATION = apb.STOP_REASON_EMIGRATION
    ABANDON_EMPLOYEE_INSURANCE = apb.STOP_REASON_ABANDON_EMPLOYEE_INSURANCE


# The stop each withdrawal needs first (rule A4).
STOP_FOR_WITHDRAWAL = {
    WithdrawalReason.DEATH: StopReason.DEATH,
    WithdrawalReason.EMIGRATION: StopReason.EMIGRATION,
    WithdrawalReason.ABANDON_EMPLOYEE_INSURANCE: StopReason.ABANDON_EMPLOYEE_INSURANCE,
}


class ContributionPayer(enum.IntEnum):
    EMPLOYER = apb.CONTRIBUTION_PAYER_EMPLOYER
    FLEXIBLE_EMPLOYMENT = apb.CONTRIBUTION_PAYER_FLEXIBLE_EMPLOYMENT


class CommercialInsuranceKind(enum.IntEnum):
    HEALTH = apb.COMMERCIAL_INSURANCE_KIND_HEALTH
    ACCIDENT = apb.COMMERCIAL_INSURANCE_KIND_ACCIDENT


class PaymentState(enum.IntEnum):
    QUOTED = apb.PAYMENT_STATE_QUOTED
    PAID = apb.PAYMENT_STATE_PAID
    CANCELLED = apb.PAYMENT_STATE_CANCELLED
    REVERSED = apb.PAYMENT_STATE_REVERSED


class BindingStatus(enum.IntEnum):
    ACTIVE = bpb.BINDING_STATUS_ACTIVE
    REMOVED = bpb.BINDING_STATUS_REMOVED
    LAPSED = bpb.BINDING_STATUS_LAPSED
    PENDING_CONSENT = bpb.BINDING_STATUS_PENDING_CONSENT


class QuotaStatus(enum.IntEnum):
    ACTIVE = bpb.QUOTA_STATUS_ACTIVE
    ENDED = bpb.QUOTA_STATUS_ENDED
    PENDING_CONSENT = bpb.QUOTA_STATUS_PENDING_CONSENT


class QuotaEndReason(enum.IntEnum):
    BY_FUNDER = bpb.QUOTA_END_REASON_BY_FUNDER
    BY_RELATIVE = bpb.QUOTA_END_REASON_BY_RELATIVE
    INSURANCE_ENDED = bpb.QUOTA_END_REASON_INSURANCE_ENDED
    MOVED = bpb.QUOTA_END_REASON_MOVED
    FUNDER_NOT_EMPLOYEE = bpb.QUOTA_END_REASON_FUNDER_NOT_EMPLOYEE
    NOT_CONFIRMED = bpb.QUOTA_END_REASON_NOT_CONFIRMED


class SettlementStatus(enum.IntEnum):
    QUOTED = spb.SETTLEMENT_STATUS_QUOTED
    PENDING = spb.SETTLEMENT_STATUS_PENDING
    SETTLED = spb.SETTLEMENT_STATUS_SETTLED
    CANCELLED = spb.SETTLEMENT_STATUS_CANCELLED
    ABORTED = spb.SETTLEMENT_STATUS_ABORTED
    COMMITTING = spb.SETTLEMENT_STATUS_COMMITTING


class LegKind(enum.IntEnum):
    OWN_ACCOUNT = spb.LEG_KIND_OWN_ACCOUNT
    FAMILY_AID = spb.LEG_KIND_FAMILY_AID
    QUOTA = spb.LEG_KIND_QUOTA


class PremiumKind(enum.IntEnum):
    RESIDENT_MEDICAL = spb.PREMIUM_KIND_RESIDENT_MEDICAL
    LONG_TERM_CARE = spb.PREMIUM_KIND_LONG_TERM_CARE


class PaymentEventKind(enum.IntEnum):
    SETTLEMENT = spb.PAYMENT_EVENT_KIND_SETTLEMENT
    REFUND = spb.PAYMENT_EVENT_KIND_REFUND
    PREMIUM = spb.PAYMENT_EVENT_KIND_PREMIUM


class CredentialType(enum.IntEnum):
    MEDICAL_CODE = spb.CREDENTIAL_TYPE_MEDICAL_CODE
    ID_CARD = spb.CREDENTIAL_TYPE_ID_CARD
    SOCIAL_SECURITY_CARD = spb.CREDENTIAL_TYPE_SOCIAL_SECURITY_CARD


def lua_constants(*enums: type[enum.IntEnum]) -> str:
    """`local ACCOUNT_STATUS_ACTIVE = '1'` lines for a script's head. Scripts keep the numbers as
    strings, the way Redis hashes hand them back."""
    lines = []
    for e in enums:
        prefix = _snake(e.__name__)
        lines += [f"local {prefix}_{m.name} = '{int(m)}'" for m in e]
    return "\n".join(lines) + "\n"


def _snake(name: str) -> str:
    return "".join(f"_{c}" if c.isupper() and i else c for i, c in enumerate(name)).upper()
