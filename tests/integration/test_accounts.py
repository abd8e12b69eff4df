"""OpenAccount, GetAccount, BatchGetAccounts, Credit, ListEntries, Suspend/Resume, idempotency."""

import grpc

from gongji.account.v1 import account_pb2 as pb
from gongji.common.v1 import common_pb2
from tests.integration.accounts import all_entries, credit, get, open_account, rid, withdraw
from tests.support import new_pid, refused

EMPLOYEE = common_pb2.INSURANCE_TYPE_EMPLOYEE


def open_request(pid: str, request_id: str = "", region: str = "430102") -> pb.OpenAccountRequest:
    return pb.OpenAccountRequest(
        person_id=pid, name="李四", insurance_type=EMPLOYEE, region_code=region,
        request_id=request_id or rid(),
    )  # fmt: skip


async def test_an_opened_employee_account_is_active_and_empty(account):
    pid = new_pid()
    a = await account.OpenAccount(open_request(pid))
    assert (a.person_id, a.status, a.balance_fen, a.available_fen) == (
        pid, pb.ACCOUNT_STATUS_ACTIVE, 0, 0,
    )  # fmt: skip
    assert a.opened_at.seconds > 0
    assert await get(account, pid) == a


async def test_a_lower_case_x_in_the_id_is_stored_upper_case(account):  # rule I1
    pid = new_pid()
    while not pid.endswith("X"):
        pid = new_pid()
    a = await account.OpenAccount(open_request(pid.lower()))
    assert a.person_id == pid


async def test_opening_twice_is_refused_unless_it_is_a_retry(account):
    pid, key = new_pid(), rid()
    first = await account.OpenAccount(open_request(pid, key))
    assert await account.OpenAccount(open_request(pid, key)) == first
    assert await refused(account.OpenAccount(open_request(pid))) == (
        grpc.StatusCode.ALREADY_EXISTS, "ACCOUNT_EXISTS",
    )  # fmt: skip


async def test_unknown_accounts_are_not_found(account):
    assert await refused(get(account, new_pid())) == (
        grpc.StatusCode.NOT_FOUND,
        "ACCOUNT_NOT_FOUND",
    )


async def test_batch_get_leaves_unknown_ids_out(account):
    known = [await open_account(account, 100), await open_account(account, 200)]
    r = await account.BatchGetAccounts(
        pb.BatchGetAccountsRequest(person_ids=[known[0], new_pid(), known[1], known[0]])
    )
    assert [(a.person_id, a.balance_fen) for a in r.accounts] == [(known[0], 100), (known[1], 200)]


async def test_credits_add_to_the_balance_with_an_entry_each(account):  # rule A1, A7
    pid = await open_account(account)
    e1 = await credit(account, pid, 12_345)
    e2 = await credit(account, pid, 55)
    assert (e1.amount_fen, e1.balance_after_fen, e1.kind) == (
        12_345,
        12_345,
        pb.ENTRY_KIND_ALLOCATION,
    )
    assert (e2.balance_after_fen, e2.reference) == (12_400, "2026-11")
    assert (await get(account, pid)).balance_fen == 12_400


async def test_credit_kinds_become_entry_kinds(account):
    pid = await open_account(account)
    e = await account.Credit(
        pb.CreditRequest(person_id=pid, amount_fen=1, kind=pb.CREDIT_KIND_ADJUSTMENT,
                         memo="correction", request_id=rid())
    )  # fmt: skip
    assert e.kind == pb.ENTRY_KIND_ADJUSTMENT


async def test_residents_have_no_personal_account_to_credit(account):
    pid = await open_account(account, resident=True)
    assert await refused(credit(account, pid, 100)) == (
        grpc.StatusCode.FAILED_PRECONDITION, "NO_PERSONAL_ACCOUNT",
    )  # fmt: skip
    a = await get(account, pid)
    assert (a.insurance_type, a.balance_fen) == (common_pb2.INSURANCE_TYPE_RESIDENT, 0)


async def test_a_credit_retried_with_its_request_id_is_applied_once(account):
    pid = await open_account(account)
    request = pb.CreditRequest(
        person_id=pid, amount_fen=700, kind=pb.CREDIT_KIND_MONTHLY_ALLOCATION, request_id=rid()
    )
    first = await account.Credit(request)
    assert await account.Credit(request) == first
    assert (await get(account, pid)).balance_fen == 700


async def test_a_request_id_reused_with_other_content_is_refused(account):
    pid, other = await open_account(account), await open_account(account)
    key = rid()
    request = pb.CreditRequest(
        person_id=pid, amount_fen=700, kind=pb.CREDIT_KIND_MONTHLY_ALLOCATION, request_id=key
    )
    await account.Credit(request)
    request.amount_fen = 701
    assert await refused(account.Credit(request)) == (
        grpc.StatusCode.ALREADY_EXISTS, "IDEMPOTENCY_CONFLICT",
    )  # fmt: skip
    request.amount_fen, request.person_id = 700, other
    assert (await refused(account.Credit(request)))[1] == "IDEMPOTENCY_CONFLICT"
    assert (await get(account, pid)).balance_fen == 700
    assert (await get(account, other)).balance_fen == 0


async def test_entries_are_listed_newest_first_in_pages(account):  # rule A7
    pid = await open_account(account)
    for amount in range(1, 8):
        await credit(account, pid, amount)
    page1 = await account.ListEntries(pb.ListEntriesRequest(person_id=pid, page_size=3))
    assert [e.amount_fen for e in page1.entries] == [7, 6, 5]
    page2 = await account.ListEntries(
        pb.ListEntriesRequest(person_id=pid, page_size=3, page_token=page1.next_page_token)
    )
    assert [e.amount_fen for e in page2.entries] == [4, 3, 2]
    page3 = await account.ListEntries(
        pb.ListEntriesRequest(person_id=pid, page_size=3, page_token=page2.next_page_token)
    )
    assert [e.amount_fen for e in page3.entries] == [1]
    assert page3.next_page_token == ""
    assert len(await all_entries(account, pid)) == 7


async def test_list_entries_of_an_unknown_account_is_not_found(account):
    _, reason = await refused(account.ListEntries(pb.ListEntriesRequest(person_id=new_pid())))
    assert reason == "ACCOUNT_NOT_FOUND"


async def test_suspend_and_resume(account):  # rule A6
    pid = await open_account(account, 1_000)
    a = await account.SuspendAccount(
        pb.SuspendAccountRequest(person_id=pid, reason="fraud case 2026-17", request_id=rid())
    )
    assert a.status == pb.ACCOUNT_STATUS_SUSPENDED
    assert (await credit(account, pid, 1)).balance_after_fen == 1_001  # credits still land
    again = await account.SuspendAccount(
        pb.SuspendAccountRequest(person_id=pid, reason="again", request_id=rid())
    )
    assert again.status == pb.ACCOUNT_STATUS_SUSPENDED
    a = await account.ResumeAccount(pb.ResumeAccountRequest(person_id=pid, request_id=rid()))
    assert (a.status, a.balance_fen) == (pb.ACCOUNT_STATUS_ACTIVE, 1_001)


async def test_a_closed_account_reopens_empty_with_its_history(account):
    pid = await open_account(account, 500)
    await withdraw(account, pid, pb.WITHDRAWAL_REASON_EMIGRATION, payee="bank 6222")
    assert (await get(account, pid)).status == pb.ACCOUNT_STATUS_CLOSED
    assert (await refused(credit(account, pid, 1)))[1] == "ACCOUNT_CLOSED"
    a = await account.OpenAccount(open_request(pid, region="430103"))
    assert (a.status, a.balance_fen, a.region_code) == (pb.ACCOUNT_STATUS_ACTIVE, 0, "430103")
    assert [e.amount_fen for e in await all_entries(account, pid)] == [-500, 500]
