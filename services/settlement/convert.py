"""Payment records and followed ledger entries -> the settlement service's protos."""

from __future__ import annotations

from gongji.account.v1 import account_pb2 as apb
from gongji.settlement.v1 import settlement_pb2 as pb
from services.common.auth import Caller
from services.common.enums import (
    EntryKind,
    LegKind,
    PaymentEventKind,
    PaymentState,
    SettlementStatus,
)
from services.settlement.bill import Bill, PremiumOrder
from services.settlement.cursor import cursor

_STATUS = {
    PaymentState.QUOTED: SettlementStatus.QUOTED,
    PaymentState.PAID: SettlementStatus.SETTLED,
    PaymentState.CANCELLED: SettlementStatus.CANCELLED,
}
_EVENT_KIND = {
    EntryKind.SETTLEMENT: PaymentEventKind.SETTLEMENT,
    EntryKind.REFUND: PaymentEventKind.REFUND,
    EntryKind.PREMIUM: PaymentEventKind.PREMIUM,
}


def settlement_pb(p: apb.Payment) -> pb.Settlement:
    b = Bill.from_details(p.details)
    own = sum(s.amount_fen for s in p.shares if s.own_account)
    family = sum(s.amount_fen for s in p.shares if not s.own_account)
    out = pb.Settlement(
        settlement_id=p.payment_id, status=_STATUS[PaymentState(p.state)],  # type: ignore[arg-type]
        institution_id=b.institution_id, medins_setl_id=b.medins_setl_id,
        patient_id=b.patient_id, medfee_total_fen=b.medfee_total_fen,
        fund_pay_fen=b.fund_pay_fen, personal_burden_fen=b.personal_burden_fen,
        acct_pay_fen=own, acct_mulaid_pay_fen=family,
        cash_pay_fen=b.personal_burden_fen - own - family, service_date=b.service_date,
        agent_id=b.agent_id, credential_type=b.credential_type,  # type: ignore[arg-type]
        cancel_reason=p.cancel_reason,
        legs=[pb.PaymentLeg(
            payer_id=s.person_id, amount_fen=s.amount_fen, balance_after_fen=s.balance_after_fen,
            entry_id=s.entry_id, kind=leg_kind(s), quota_id=s.quota_id,  # type: ignore[arg-type]
        ) for s in p.shares],
    )  # fmt: skip
    if PaymentState(p.state) != PaymentState.QUOTED:
        out.settled_at.CopyFrom(p.paid_at)
    if p.HasField("cancelled_at"):
        out.cancelled_at.CopyFrom(p.cancelled_at)
    return out


def leg_kind(share: apb.PaymentShare) -> LegKind:
    """The patient's own account, an aid quota (N3), or a payer's family aid."""
    if share.own_account:
        return LegKind.OWN_ACCOUNT
    return LegKind.QUOTA if share.quota_id else LegKind.FAMILY_AID


def shown_to(viewer: Caller, s: pb.Settlement) -> pb.Settlement:
    """The settlement as `viewer` may see it (API.md, "Other people's balances"): a leg's
    `balance_after_fen` is its payer's own business, shown to him and to operators and
    services; the patient's own leg also to the institution that settles it (its receipt
    prints that balance). To anyone else it is 0. A copy: what is kept is never changed."""
    if viewer.role in ("operator", "service"):
        return s
    out = pb.Settlement()
    out.CopyFrom(s)
    for leg in out.legs:
        patients_own = int(leg.kind) == LegKind.OWN_ACCOUNT and leg.payer_id == s.patient_id
        if viewer.role == "citizen" and leg.payer_id == viewer.sub:
            continue
        if viewer.role == "institution" and patients_own and s.institution_id == viewer.sub:
            continue
        leg.balance_after_fen = 0
    return out


def premium_pb(p: apb.Payment) -> pb.PremiumPayment:
    order = PremiumOrder.from_details(p.details)
    return pb.PremiumPayment(
        payment_id=p.payment_id, payer_id=order.payer_id, beneficiary_id=order.beneficiary_id,
        year=order.year, amount_fen=order.amount_fen, entry_id=p.shares[0].entry_id,
        paid_at=p.paid_at, kind=order.kind,  # type: ignore[arg-type]
        quota_id=p.shares[0].quota_id,
    )  # fmt: skip


def payment_event_pb(person_id: str, f: apb.FollowedEntry) -> pb.PaymentEvent:
    """One entry of the watched person's ledger as his watch shows it (A10). The patient is
    the payment's (a premium's beneficiary); the institution comes from a settlement's bill."""
    e = f.entry
    settled = int(f.payment_kind) == EntryKind.SETTLEMENT and f.details  # 0: no record
    return pb.PaymentEvent(
        cursor=cursor(person_id, f.position), entry_id=e.entry_id, person_id=person_id,
        kind=_EVENT_KIND[EntryKind(e.kind)], amount_fen=e.amount_fen,  # type: ignore[arg-type]
        balance_after_fen=e.balance_after_fen, settlement_id=f.payment_id,
        patient_id=f.patient_id,
        institution_id=Bill.from_details(f.details).institution_id if settled else "",
        occurred_at=e.created_at,
    )  # fmt: skip
