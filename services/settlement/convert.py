"""Journal -> proto for the settlement service."""

from __future__ import annotations

from gongji.settlement.v1 import settlement_pb2 as pb
from services.common.clock import timestamp
from services.settlement.journal import Journal


def settlement_pb(j: Journal) -> pb.Settlement:
    b = j.bill
    assert b is not None
    out = pb.Settlement(
        settlement_id=j.payment_id, status=j.status,  # type: ignore[arg-type]
        institution_id=b.institution_id, medins_setl_id=b.medins_setl_id,
        patient_id=b.patient_id, medfee_total_fen=b.medfee_total_fen,
        fund_pay_fen=b.fund_pay_fen, personal_burden_fen=b.personal_burden_fen,
        acct_pay_fen=j.acct_pay_fen, acct_mulaid_pay_fen=j.acct_mulaid_pay_fen,
        cash_pay_fen=j.cash_pay_fen, service_date=b.service_date, agent_id=b.agent_id,
        credential_type=b.credential_type,  # type: ignore[arg-type]
        cancel_reason=j.cancel_reason,
        legs=[pb.PaymentLeg(payer_id=leg.payer_id, kind=leg.kind,  # type: ignore[arg-type]
                            amount_fen=leg.amount_fen, balance_after_fen=leg.balance_after_fen,
                            entry_id=leg.entry_id)
              for leg in j.legs],
    )  # fmt: skip
    if j.settled_ms:
        out.settled_at.CopyFrom(timestamp(j.settled_ms))
    if j.cancelled_ms:
        out.cancelled_at.CopyFrom(timestamp(j.cancelled_ms))
    return out


def premium_pb(j: Journal) -> pb.PremiumPayment:
    p = j.premium
    assert p is not None and j.legs
    return pb.PremiumPayment(
        payment_id=j.payment_id, payer_id=p.payer_id, beneficiary_id=p.beneficiary_id,
        year=p.year, amount_fen=p.amount_fen, entry_id=j.legs[0].entry_id,
        paid_at=timestamp(j.settled_ms),
    )  # fmt: skip
