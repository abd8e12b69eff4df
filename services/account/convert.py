"""Domain <-> proto for the account service."""

from __future__ import annotations

from google.protobuf.timestamp_pb2 import Timestamp

from gongji.account.v1 import account_pb2 as pb
from services.account.domain import Account, Entry, Hold


def timestamp(ms: int) -> Timestamp:
    return Timestamp(seconds=ms // 1000, nanos=(ms % 1000) * 1_000_000)


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


def hold_pb(h: Hold) -> pb.Hold:
    return pb.Hold(
        hold_id=h.hold_id,
        person_id=h.person_id,
        amount_fen=h.amount_fen,
        state=h.state,  # type: ignore[arg-type]
        expires_at=timestamp(h.expires_ms),
    )
