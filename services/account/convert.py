"""Domain <-> proto for the account service."""

from __future__ import annotations

from gongji.account.v1 import account_pb2 as pb
from gongji.binding.v1 import binding_pb2 as bpb
from services.account.contributions import Contribution, Summary
from services.account.domain import Account, Entry, FamilyAidGrant, Payment, Quota
from services.common.clock import timestamp


def account_pb(a: Account) -> pb.Account:
    return pb.Account(
        person_id=a.person_id,
        name=a.name,
        insurance_type=a.insurance_type,  # type: ignore[arg-type]
        region_code=a.region_code,
        status=a.status,  # type: ignore[arg-type]
        balance_fen=a.balance_fen,
        held_fen=a.held_fen,
        available_fen=a.available_fen,
        opened_at=timestamp(a.opened_ms),
        stopped_reason=a.stopped_reason,  # type: ignore[arg-type]
        stopped_at=timestamp(a.stopped_ms) if a.stopped_ms else None,
        quota_reserved_fen=a.quota_reserved_fen,
    )


def entry_pb(e: Entry) -> pb.LedgerEntry:
    return pb.LedgerEntry(
        entry_id=e.entry_id,
        person_id=e.person_id,
        kind=e.kind,  # type: ignore[arg-type]
        amount_fen=e.amount_fen,
        balance_after_fen=e.balance_after_fen,
        reference=e.reference,
        created_at=timestamp(e.created_ms),
    )


def contribution_pb(c: Contribution) -> pb.Contribution:
    return pb.Contribution(
        person_id=c.person_id,
        month=c.month,
        base_fen=c.base_fen,
        employee_fen=c.employee_fen,
        employer_fen=c.employer_fen,
        payer=c.payer,  # type: ignore[arg-type]
        region_code=c.region_code,
        allocation_fen=c.allocation_fen,
        allocation_entry_id=c.allocation_entry_id,
        back_payment=c.back_payment,
        recorded_at=timestamp(c.recorded_ms),
    )


def record_pb(person_id: str, s: Summary) -> pb.ContributionRecord:
    return pb.ContributionRecord(
        person_id=person_id,
        total_months=s.total_months,
        local_months=s.local_months,
        full_years=s.full_years,
        first_month=s.first_month,
        last_month=s.last_month,
        gaps=[pb.MonthRange(first_month=a, last_month=b) for a, b in s.gaps],
    )


def payment_pb(p: Payment) -> pb.Payment:
    shares = [
        pb.PaymentShare(person_id=s.person_id, own_account=s.own_account,
                        amount_fen=s.amount_fen, entry_id=s.entry_id,
                        balance_after_fen=s.balance_after_fen, quota_id=s.quota_id,
                        payer_province=s.payer_province)
        for s in p.shares
    ]  # fmt: skip
    out = pb.Payment(
        payment_id=p.payment_id, state=p.state, kind=p.kind,  # type: ignore[arg-type]
        patient_id=p.patient_id, shares=shares, details=p.details.encode(),
        paid_at=timestamp(p.at_ms), cancel_reason=p.cancel_reason,
        cancel_request_id=p.cancel_request_id, institution_id=p.institution_id,
    )  # fmt: skip
    if p.cancelled_ms:
        out.cancelled_at.CopyFrom(timestamp(p.cancelled_ms))
    return out


def grant_pb(g: FamilyAidGrant) -> pb.FamilyAidGrant:
    return pb.FamilyAidGrant(
        binder_id=g.binder_id, beneficiary_id=g.beneficiary_id, binding_id=g.binding_id,
        start_date=g.start_date, end_date=g.end_date, active=g.active,
    )  # fmt: skip


def quota_pb(q: Quota) -> bpb.Quota:
    """A quota as the binding service answers it (the message is the binding service's)."""
    return bpb.Quota(
        quota_id=q.quota_id, funder_id=q.funder_id, relative_id=q.relative_id,
        relationship=q.relationship,  # type: ignore[arg-type]
        granted_fen=q.granted_fen, used_fen=q.used_fen, remaining_fen=q.remaining_fen,
        status=q.status,  # type: ignore[arg-type]
        end_reason=q.end_reason,  # type: ignore[arg-type]
        created_at=timestamp(q.created_ms) if q.created_ms else None,
        ended_at=timestamp(q.ended_ms) if q.ended_ms else None,
    )  # fmt: skip
