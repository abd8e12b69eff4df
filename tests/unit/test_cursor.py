"""A watch's cursor (rule A10): it names a ledger position of one person, and only his."""

import pytest

from services.common.errors import DomainError
from services.settlement.cursor import cursor, position

PID, OTHER = "430102198005170012", "610402195503010026"


def test_a_cursor_gives_back_the_position_it_was_made_for():  # rule A10
    for n in (0, 1, 2, 99, 10**15):
        assert position(cursor(PID, n), PID) == n


def test_a_cursor_is_refused_on_another_person_s_watch():  # rule A10
    with pytest.raises(DomainError, match="another person") as info:
        position(cursor(OTHER, 3), PID)
    assert info.value.reason == "INVALID_ARGUMENT"
    assert PID not in str(info.value) and OTHER not in str(info.value)  # rule I3


@pytest.mark.parametrize(
    "given", ["", "x", "w1.0.", "w1.-1.abc", cursor(PID, 3) + " ", cursor(PID, 3).upper(),
              "w2" + cursor(PID, 3)[2:], cursor(PID, 3).replace(".3.", ".03.")],
)  # fmt: skip
def test_anything_but_a_cursor_this_service_made_is_refused(given):  # rule A10
    with pytest.raises(DomainError) as info:
        position(given, PID)
    assert info.value.reason == "INVALID_ARGUMENT"
