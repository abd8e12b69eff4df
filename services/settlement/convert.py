"""Journal <-> proto for the settlement service."""

from __future__ import annotations

from typing import Any

from gongji.settlement.v1 import settlement_pb2 as pb
from services.account.convert import timestamp


def settlement_pb(j: dict[str, Any]) -> pb.Settlement:
    out = pb.Settlement(
        settlement_id=j["settlement_id"], status=j["status"],
        institution_id=j["institution_id"], medins_setl_id=j["medins_setl_id"],
        patient_id=j["patient_id"], medfee_total_fen=j["medfee_total_fen"],
        fund_pay_fen=j["fund_pay_fen"], personal_burden_fen=j["personal_burden_fen"],
        acct_pay_fen=j["acct_pay"], acct_mulaid_pay_fen=j["acct_mulaid_pay"],
        cash_pay_fen=j["cash_pay"], service_date=j["service_date"], agent_id=j["agent_id"],
        credential_type=j["credential_type"], cancel_reason=j.get("cancel_reason", ""),
        legs=[pb.PaymentLeg(payer_id=leg["payer_id"], kind=leg["kind"], amount_fen=leg["amount"],
                            balance_after_fen=leg["balance_after"], entry_id=leg["entry_id"])
              for leg in j["legs"]],
    )  # fmt: skip
    if j.get("settled_ms"):
        out.settled_at.CopyFrom(timestamp(j["settled_ms"]))
    if j.get("cancelled_ms"):
        out.cancelled_at.CopyFrom(timestamp(j["cancelled_ms"]))
    return out
