"""Who needs to confirm a binding (rule B14): an adult, 18 or older on the Beijing date of the
request, bound by a citizen."""

import datetime as dt

from services.binding.domain import age_on, needs_consent
from services.common.ids import make_person_id


def born(day: dt.date) -> str:
    return make_person_id("430102", day, 7)


def test_a_relative_is_an_adult_from_his_eighteenth_birthday_on():  # rule B14
    pid = born(dt.date(2008, 3, 15))
    assert not needs_consent("citizen", pid, dt.date(2026, 3, 14))
    assert needs_consent("citizen", pid, dt.date(2026, 3, 15))


def test_one_born_on_29_february_comes_of_age_on_1_march_of_a_common_year():
    pid = born(dt.date(2008, 2, 29))
    assert age_on(pid, dt.date(2026, 2, 28)) == 17
    assert age_on(pid, dt.date(2026, 3, 1)) == 18


def test_counter_staff_and_services_need_no_confirmation():  # rule B14
    adult = born(dt.date(1980, 1, 1))
    assert needs_consent("citizen", adult, dt.date(2026, 1, 1))
    for role in ("operator", "service"):
        assert not needs_consent(role, adult, dt.date(2026, 1, 1))
