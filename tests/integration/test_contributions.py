"""Contribution months through the account service (rule A8): each month's allocation credited
exactly once, whatever the deliveries; back payments; the record with its gaps."""

import asyncio

import grpc

from gongji.account.v1 import account_pb2 as pb
from tests.integration.accounts import all_entries, get, open_account, rid, withdraw
from tests.support import new_pid, refused

EMPLOYER = pb.CONTRIBUTION_PAYER_EMPLOYER


def month_of(
    pid: str, month: str, base: int = 800_000, region: str = ""
) -> pb.RecordContributionRequest:
    return pb.RecordContributionRequest(
        person_id=pid, month=month, base_fen=base, employee_fen=base * 2 // 100,
        employer_fen=base * 6 // 100, payer=EMPLOYER, region_code=region, request_id=rid(),
    )  # fmt: skip


async def test_months_with_gaps_and_a_back_payment(account):  # rule A8
    pid = await open_account(account, 0)
    for month in ("2025-01", "2025-02", "2025-05", "2025-06"):
        c = await account.RecordContribution(month_of(pid, month))
        assert (c.allocation_fen, c.back_payment) == (16_000, False)  # 2% of 8,000 yuan
    late = await account.RecordContribution(month_of(pid, "2025-03"))  # 补缴
    assert late.back_payment and late.allocation_fen == 16_000 and late.allocation_entry_id
    record = await account.GetContributionRecord(pb.GetContributionRecordRequest(person_id=pid))
    assert (record.total_months, record.local_months, record.full_years) == (5, 5, 0)
    assert (record.first_month, record.last_month) == ("2025-01", "2025-06")
    assert [(g.first_month, g.last_month) for g in record.gaps] == [("2025-04", "2025-04")]
    assert (await get(account, pid)).balance_fen == 5 * 16_000
    references = sorted(e.reference for e in await all_entries(account, pid))
    assert references == [f"contribution:2025-0{m}" for m in (1, 2, 3, 5, 6)]


async def test_a_month_delivered_twice_credits_once_and_other_content_is_refused(account):
    pid = await open_account(account, 0)  # rule A8
    first = await account.RecordContribution(month_of(pid, "2024-07"))
    again = await account.RecordContribution(month_of(pid, "2024-07"))  # another request id
    assert again == first
    changed = month_of(pid, "2024-07", base=900_000)
    assert await refused(account.RecordContribution(changed)) == (
        grpc.StatusCode.ALREADY_EXISTS, "CONTRIBUTION_EXISTS",
    )  # fmt: skip
    assert (await get(account, pid)).balance_fen == 16_000
    assert len(await all_entries(account, pid)) == 1


async def test_the_same_month_from_twenty_callers_at_once_credits_once(account):  # rule A8
    pid = await open_account(account, 0)
    answers = await asyncio.gather(
        *(account.RecordContribution(month_of(pid, "2023-03")) for _ in range(20))
    )
    assert len({a.allocation_entry_id for a in answers}) == 1
    assert (await get(account, pid)).balance_fen == 16_000
    assert len(await all_entries(account, pid)) == 1


async def test_months_paid_elsewhere_count_but_not_as_local(account):  # rule A8
    pid = await open_account(account, 0)  # Changsha, 430102
    await account.RecordContribution(month_of(pid, "2022-01", region="610402"))  # Xianyang
    await account.RecordContribution(month_of(pid, "2022-02"))  # default: the account's region
    record = await account.GetContributionRecord(pb.GetContributionRecordRequest(person_id=pid))
    assert (record.total_months, record.local_months) == (2, 1)


async def test_a_tiny_base_credits_nothing_and_writes_no_entry(account):  # rule A8
    pid = await open_account(account, 0)
    c = await account.RecordContribution(month_of(pid, "2021-05", base=49))  # 2% = 0.98 fen
    assert (c.allocation_fen, c.allocation_entry_id) == (0, "")
    assert not await all_entries(account, pid)


async def test_only_employees_with_an_open_account_record_months(account):  # rule A8
    resident = await open_account(account, 0, resident=True)
    assert (await refused(account.RecordContribution(month_of(resident, "2025-01"))))[1] == (
        "NOT_EMPLOYEE"
    )
    stranger = month_of(new_pid(), "2025-01")
    assert (await refused(account.RecordContribution(stranger)))[1] == "ACCOUNT_NOT_FOUND"
    pid = await open_account(account, 0)
    recorded = await account.RecordContribution(month_of(pid, "2025-01"))
    await withdraw(account, pid)
    assert await account.RecordContribution(month_of(pid, "2025-01")) == recorded  # a repeat
    assert (await refused(account.RecordContribution(month_of(pid, "2025-02"))))[1] == (
        "ACCOUNT_CLOSED"
    )


async def test_no_months_make_an_empty_record(account):  # rule A8
    pid = await open_account(account, 0)
    record = await account.GetContributionRecord(pb.GetContributionRecordRequest(person_id=pid))
    assert (record.total_months, record.first_month, list(record.gaps)) == (0, "", [])
