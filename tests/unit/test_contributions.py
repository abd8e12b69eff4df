"""Contribution months, pure (rule A8): which months and amounts are accepted, and the summary
of a person's months."""

import datetime as dt

import pytest

from services.account.contributions import Summary, amounts, month, summary
from services.common.enums import ContributionPayer
from services.common.errors import DomainError

TODAY = dt.date(2026, 11, 30)
EMPLOYER, FLEXIBLE = ContributionPayer.EMPLOYER, ContributionPayer.FLEXIBLE_EMPLOYMENT


@pytest.mark.parametrize("value", ["1998-12", "2026-11", "2010-01"])
def test_months_from_the_start_of_the_insurance_to_this_month_are_accepted(value):  # rule A8
    assert month(value, TODAY) == value


@pytest.mark.parametrize("value", ["1998-11", "2026-12", "2026-13", "2026-00", "2026-1", "26-01",
                                   "2026/01", ""])  # fmt: skip
def test_other_months_are_invalid_dates(value):  # rule A8
    with pytest.raises(DomainError) as e:
        month(value, TODAY)
    assert e.value.reason == "INVALID_DATE"


@pytest.mark.parametrize("base,employee,employer,payer,reason", [
    (0, 100, 100, EMPLOYER, "INVALID_AMOUNT"),
    (10_000, 0, 0, EMPLOYER, "INVALID_AMOUNT"),
    (10_000, -1, 300, EMPLOYER, "INVALID_AMOUNT"),
    (10_000, 200, 600, FLEXIBLE, "INVALID_AMOUNT"),  # nobody employs him
    (10_000, 200, 600, 0, "INVALID_ARGUMENT"),
    (10_000, 200, 600, 7, "INVALID_ARGUMENT"),
])  # fmt: skip
def test_amounts_out_of_range_are_refused(base, employee, employer, payer, reason):  # rule A8
    with pytest.raises(DomainError) as e:
        amounts(base, employee, employer, payer)
    assert e.value.reason == reason


def test_an_employer_or_a_flexibly_employed_person_may_pay():  # rule A8
    amounts(10_000, 200, 600, EMPLOYER)
    amounts(10_000, 800, 0, FLEXIBLE)


def test_no_months_make_an_empty_record():  # rule A8
    assert summary({}, "430102") == Summary()


def test_the_record_counts_months_city_years_and_gaps():  # rule A8
    months = {f"2024-{m:02d}": "430102" for m in range(1, 13)}  # a full year in Changsha
    months |= {"2025-01": "430105", "2025-04": "610402", "2025-05": "610402", "2025-09": "430102"}
    got = summary(months, "430111")  # he lives in Changsha (4301) now
    assert (got.total_months, got.local_months, got.full_years) == (16, 14, 1)
    assert (got.first_month, got.last_month) == ("2024-01", "2025-09")
    assert got.gaps == (("2025-02", "2025-03"), ("2025-06", "2025-08"))


def test_a_gap_across_the_new_year():  # rule A8
    got = summary({"2024-11": "430102", "2025-02": "430102"}, "430102")
    assert got.gaps == (("2024-12", "2025-01"),)
