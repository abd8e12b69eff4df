"""Shortcuts for binding tests."""

from __future__ import annotations

import datetime as dt

from gongji.binding.v1 import binding_pb2 as bpb
from gongji.common.v1 import common_pb2
from services.common.clock import SystemClock, beijing_today
from tests.integration.accounts import open_account, rid
from tests.support import new_pid

SPOUSE, PARENT, CHILD = (
    common_pb2.RELATIONSHIP_SPOUSE, common_pb2.RELATIONSHIP_PARENT, common_pb2.RELATIONSHIP_CHILD,
)  # fmt: skip
SIBLING, GRANDPARENT = common_pb2.RELATIONSHIP_SIBLING, common_pb2.RELATIONSHIP_GRANDPARENT


async def person(
    account, year: int = 1980, balance: int = 10_000, region: str = "430102",
    resident: bool = False,
) -> str:  # fmt: skip
    pid = new_pid(region[:6], dt.date(year, 6, 1))
    return await open_account(account, balance, region=region, resident=resident, pid=pid)


def create(binder: str, beneficiary: str, relationship: int = SPOUSE, start: str = "",
           end: str = "") -> bpb.CreateBindingRequest:  # fmt: skip
    """A binding request; the start defaults to today (Beijing), as for a caller who leaves it."""
    return bpb.CreateBindingRequest(
        binder_id=binder, beneficiary_id=beneficiary, relationship=relationship,
        start_date=start, end_date=end, request_id=rid(),
    )  # fmt: skip


def days_from_today(days: int) -> str:
    """A Beijing business date `days` from today."""
    return (beijing_today(SystemClock()) + dt.timedelta(days=days)).isoformat()


async def payers(binding, beneficiary: str, on: str = "") -> list[tuple[str, int]]:
    r = await binding.GetPayers(bpb.GetPayersRequest(beneficiary_id=beneficiary, on_date=on))
    return [(p.binder_id, p.priority) for p in r.payers]


async def listed(binding, binder: str = "", beneficiary: str = "", inactive: bool = False):
    r = await binding.ListBindings(
        bpb.ListBindingsRequest(binder_id=binder, beneficiary_id=beneficiary,
                                include_inactive=inactive)
    )  # fmt: skip
    return list(r.bindings)
