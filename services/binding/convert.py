"""Domain <-> proto for the binding service."""

from __future__ import annotations

from gongji.account.v1 import account_pb2
from gongji.binding.v1 import binding_pb2 as pb
from services.binding.domain import Binding, Party
from services.common.clock import timestamp
from services.common.ids import mask_phone


def binding_pb(b: Binding) -> pb.Binding:
    out = pb.Binding(
        binding_id=b.binding_id,
        binder_id=b.binder_id,
        beneficiary_id=b.beneficiary_id,
        relationship=b.relationship,  # type: ignore[arg-type]
        start_date=b.start_date,
        end_date=b.end_date,
        status=b.status,  # type: ignore[arg-type]
        priority=b.priority,
        created_at=timestamp(b.created_ms),
        beneficiary_phone_masked=mask_phone(b.phone),
    )
    if b.ended_ms:
        out.ended_at.CopyFrom(timestamp(b.ended_ms))
    return out


def payer_pb(b: Binding) -> pb.Payer:
    return pb.Payer(binder_id=b.binder_id, binding_id=b.binding_id, priority=b.priority)


def party(a: account_pb2.Account | None) -> Party | None:
    if a is None:
        return None
    return Party(
        a.person_id, a.insurance_type, a.status, a.region_code, a.balance_fen,
        a.stopped_reason != 0,
    )  # fmt: skip
