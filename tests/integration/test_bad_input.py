"""Bad input gets INVALID_ARGUMENT with a reason, and changes nothing."""

import datetime as dt

import grpc
import pytest

from gongji.account.v1 import account_pb2 as pb
from gongji.settlement.v1 import settlement_pb2 as spb
from services.common.clock import SystemClock, beijing_today
from tests.integration.accounts import all_entries, get, open_account, rid
from tests.integration.test_settlement import bill, family
from tests.support import refused

INVALID = grpc.StatusCode.INVALID_ARGUMENT

GOOD = "430102198005170012"  # a valid id
BAD_CHECK = "430102198005170013"
HUGE = "x" * 10_240
# Digits to str.isdigit() but not ASCII, and numbers far beyond any page (rule: API.md limits).
BAD_PAGE_TOKENS = ("²", "٣", "1" * 20, "9" * 5_000, "-1", " 1")


@pytest.fixture
async def victim(account):
    """An account with money and a history, to show bad calls leave it unchanged."""
    pid = await open_account(account, 5_000)
    before = (await get(account, pid), len(await all_entries(account, pid)))
    yield pid
    assert (await get(account, pid), len(await all_entries(account, pid))) == before


def cases(pid: str) -> list[tuple[str, object, str]]:
    credit = dict(person_id=pid, amount_fen=100, kind=1, memo="m", request_id="r")
    return [
        ("Credit", pb.CreditRequest(**{**credit, "person_id": BAD_CHECK}), "INVALID_PERSON_ID"),
        ("Credit", pb.CreditRequest(**{**credit, "person_id": "43010219800517001"}),
         "INVALID_PERSON_ID"),
        ("Credit", pb.CreditRequest(**{**credit, "person_id": "430102198002300015"}),
         "INVALID_PERSON_ID"),
        ("Credit", pb.CreditRequest(**{**credit, "person_id": ""}), "INVALID_PERSON_ID"),
        ("Credit", pb.CreditRequest(**{**credit, "amount_fen": 0}), "INVALID_AMOUNT"),
        ("Credit", pb.CreditRequest(**{**credit, "amount_fen": -100}), "INVALID_AMOUNT"),
        ("Credit", pb.CreditRequest(**{**credit, "amount_fen": 10**12 + 1}), "INVALID_AMOUNT"),
        ("Credit", pb.CreditRequest(**{**credit, "amount_fen": 2**63 - 1}), "INVALID_AMOUNT"),
        ("Credit", pb.CreditRequest(**{**credit, "kind": 0}), "INVALID_ARGUMENT"),
        ("Credit", pb.CreditRequest(**{**credit, "kind": 42}), "INVALID_ARGUMENT"),
        ("Credit", pb.CreditRequest(**{**credit, "memo": HUGE}), "INVALID_ARGUMENT"),
        ("Credit", pb.CreditRequest(**{**credit, "request_id": ""}), "INVALID_ARGUMENT"),
        ("Credit", pb.CreditRequest(**{**credit, "request_id": HUGE}), "INVALID_ARGUMENT"),
        ("Credit", pb.CreditRequest(**{**credit, "request_id": "中文"}), "INVALID_ARGUMENT"),
        ("OpenAccount", pb.OpenAccountRequest(person_id=GOOD, name="n", insurance_type=3,
                                              region_code="430102", request_id="r"),
         "INVALID_ARGUMENT"),
        ("OpenAccount", pb.OpenAccountRequest(person_id=GOOD, name="n", insurance_type=1,
                                              region_code="990102", request_id="r"),
         "INVALID_REGION_CODE"),
        ("OpenAccount", pb.OpenAccountRequest(person_id=GOOD, name="", insurance_type=1,
                                              region_code="430102", request_id="r"),
         "INVALID_ARGUMENT"),
        ("OpenAccount", pb.OpenAccountRequest(person_id=GOOD, name=HUGE, insurance_type=1,
                                              region_code="430102", request_id="r"),
         "INVALID_ARGUMENT"),
        ("ListEntries", pb.ListEntriesRequest(person_id=pid, page_size=501), "INVALID_ARGUMENT"),
        ("ListEntries", pb.ListEntriesRequest(person_id=pid, page_token="abc"), "INVALID_ARGUMENT"),
        *(("ListEntries", pb.ListEntriesRequest(person_id=pid, page_token=token),
           "INVALID_ARGUMENT") for token in BAD_PAGE_TOKENS),
        ("BatchGetAccounts", pb.BatchGetAccountsRequest(person_ids=[pid] * 101),
         "INVALID_ARGUMENT"),
        ("SuspendAccount", pb.SuspendAccountRequest(person_id=pid, reason="", request_id="r"),
         "INVALID_ARGUMENT"),
        ("PurchaseCommercialInsurance", pb.PurchaseCommercialInsuranceRequest(
            person_id=pid, amount_fen=0, insurer_code="I", policy_no="P", request_id="r"),
         "INVALID_AMOUNT"),
        ("PurchaseCommercialInsurance", pb.PurchaseCommercialInsuranceRequest(
            person_id=pid, amount_fen=1, insurer_code="", policy_no="P", request_id="r"),
         "INVALID_ARGUMENT"),
        ("WithdrawBalance", pb.WithdrawBalanceRequest(person_id=pid, reason=9, payee="p",
                                                      request_id="r"), "INVALID_ARGUMENT"),
        ("WithdrawBalance", pb.WithdrawBalanceRequest(person_id=pid, reason=1, payee="",
                                                      request_id="r"), "INVALID_ARGUMENT"),
        ("TransferAccount", pb.TransferAccountRequest(person_id=pid, to_region_code="4301",
                                                      request_id="r"), "INVALID_REGION_CODE"),
        ("TransferAccount", pb.TransferAccountRequest(person_id=pid, to_region_code="430600",
                                                      payee="\u202e", request_id="r"),
         "INVALID_ARGUMENT"),
        ("StopInsurance", pb.StopInsuranceRequest(person_id=pid, reason=0, request_id="r"),
         "INVALID_ARGUMENT"),
        ("StopInsurance", pb.StopInsuranceRequest(person_id=pid, reason=7, request_id="r"),
         "INVALID_ARGUMENT"),
        ("ChangeInsuranceType", pb.ChangeInsuranceTypeRequest(
            person_id=pid, insurance_type=0, request_id="r"), "INVALID_ARGUMENT"),
    ]  # fmt: skip


async def test_bad_input_is_refused_with_a_reason_and_changes_nothing(account, victim):
    for method, request, reason in cases(victim):
        outcome = await refused(getattr(account, method)(request, timeout=5))
        assert outcome == (grpc.StatusCode.INVALID_ARGUMENT, reason), (method, request)


async def test_a_refused_request_id_is_still_free(account):
    """Only successful results are recorded: a refused request may be retried, fixed."""
    pid, key = await open_account(account), rid()
    bad = pb.CreditRequest(person_id=pid, amount_fen=0, kind=1, request_id=key)
    assert (await refused(account.Credit(bad)))[1] == "INVALID_AMOUNT"
    bad.amount_fen = 10**12
    bad.person_id = "430102198005170012"  # no such account
    assert (await refused(account.Credit(bad)))[1] == "ACCOUNT_NOT_FOUND"
    good = pb.CreditRequest(person_id=pid, amount_fen=1, kind=1, request_id=key)
    assert (await account.Credit(good)).balance_after_fen == 1


async def test_bad_settlement_input_is_refused_with_a_reason(account, binding, settlement):
    child, _, _ = await family(account, binding)
    today = beijing_today(SystemClock())
    for day in (today - dt.timedelta(days=31), today + dt.timedelta(days=1)):
        request = bill(child, 100, service_date=day.isoformat())
        assert await refused(settlement.Settle(request)) == (INVALID, "INVALID_DATE"), day
    for day in ("0001-01-01", "2999-12-31", "2026-02-30", "yesterday"):
        assert await refused(settlement.PreSettle(bill(child, 100, service_date=day))) == (
            INVALID, "INVALID_DATE",
        ), day  # fmt: skip
    for token in BAD_PAGE_TOKENS:
        listing = spb.ListSettlementsRequest(patient_id=child, page_token=token)
        assert await refused(settlement.ListSettlements(listing)) == (INVALID, "INVALID_ARGUMENT")
    assert (await get(account, child)).balance_fen == 5_000
    oldest = (today - dt.timedelta(days=30)).isoformat()
    assert (await settlement.Settle(bill(child, 100, service_date=oldest))).service_date == oldest
