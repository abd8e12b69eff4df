"""Shortcuts for integration tests: open accounts with money, read balances."""

from __future__ import annotations

import uuid

from gongji.account.v1 import account_pb2 as pb
from gongji.account.v1 import account_pb2_grpc
from gongji.common.v1 import common_pb2
from services.common.clock import SystemClock, beijing_today
from services.common.enums import STOP_FOR_WITHDRAWAL, WithdrawalReason
from tests.support import new_pid

Stub = account_pb2_grpc.AccountServiceStub


def rid() -> str:
    return uuid.uuid4().hex


async def open_account(
    stub: Stub, balance_fen: int = 0, region: str = "430102", resident: bool = False,
    pid: str | None = None, name: str = "张三",
) -> str:  # fmt: skip
    pid = pid or new_pid(region)
    kind = common_pb2.INSURANCE_TYPE_RESIDENT if resident else common_pb2.INSURANCE_TYPE_EMPLOYEE
    await stub.OpenAccount(
        pb.OpenAccountRequest(
            person_id=pid, name=name, insurance_type=kind, region_code=region, request_id=rid()
        ),
        timeout=5,
    )
    if balance_fen:
        await credit(stub, pid, balance_fen)
    return pid


async def credit(stub: Stub, pid: str, amount: int) -> pb.LedgerEntry:
    return await stub.Credit(
        pb.CreditRequest(
            person_id=pid, amount_fen=amount, kind=pb.CREDIT_KIND_MONTHLY_ALLOCATION,
            memo="2026-11", request_id=rid(),
        ),
        timeout=5,
    )  # fmt: skip


async def get(stub: Stub, pid: str) -> pb.Account:
    return await stub.GetAccount(pb.GetAccountRequest(person_id=pid), timeout=5)


async def all_entries(stub: Stub, pid: str) -> list[pb.LedgerEntry]:
    out: list[pb.LedgerEntry] = []
    token = ""
    while True:
        page = await stub.ListEntries(
            pb.ListEntriesRequest(person_id=pid, page_size=500, page_token=token), timeout=5
        )
        out.extend(page.entries)
        token = page.next_page_token
        if not token:
            return out


async def pay(stub: Stub, pid: str, amount: int, payment_id: str = "") -> pb.Payment:
    """A settlement's payment from the patient's own account alone (the rest cash), made as the
    settlement service makes one (PayFromAccounts, a service's call)."""
    today = beijing_today(SystemClock()).isoformat()
    return await stub.PayFromAccounts(
        pb.PayFromAccountsRequest(
            payment_id=payment_id or f"T{rid()}", kind=pb.ENTRY_KIND_SETTLEMENT, patient_id=pid,
            sources=[pb.PaySource(person_id=pid)], amount_fen=amount, on_date=today,
        ),
        timeout=5,
    )  # fmt: skip


async def stop(stub: Stub, pid: str, reason: int = pb.STOP_REASON_DEATH) -> pb.Account:
    return await stub.StopInsurance(
        pb.StopInsuranceRequest(person_id=pid, reason=reason, request_id=rid()), timeout=5
    )


async def withdraw(
    stub: Stub, pid: str, reason: int = pb.WITHDRAWAL_REASON_DEATH, payee: str = "heirs"
) -> pb.LedgerEntry:
    """Rule A4: the insurance stopped with the matching reason, then the whole balance paid out
    and the account closed."""
    await stop(stub, pid, STOP_FOR_WITHDRAWAL[WithdrawalReason(reason)])
    return await stub.WithdrawBalance(
        pb.WithdrawBalanceRequest(person_id=pid, reason=reason, payee=payee, request_id=rid()),
        timeout=5,
    )
