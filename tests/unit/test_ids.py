"""Validation of ids and values (docs/RULES.md I1-I3, API.md "Conventions" limits)."""

import datetime as dt

import pytest

from services.common import ids
from services.common.errors import DomainError

TODAY = dt.date(2025, 6, 1)
VALID_IDS = ("11010519491231002X", "430102198005170012", "610402195503010026")

# API.md "Conventions": the province-level codes a region code may start with.
PROVINCE_CODES = [
    11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46,
    50, 51, 52, 53, 54, 61, 62, 63, 64, 65, 71, 81, 82,
]  # fmt: skip


def check_char(first17: str) -> str:
    """ISO 7064 MOD 11-2, written out from docs/RULES.md I2 independently of ids.py."""
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    return "10X98765432"[sum(int(c) * w for c, w in zip(first17, weights, strict=True)) % 11]


def with_check(first17: str) -> str:
    return first17 + check_char(first17)


def refusal(call, *args, **kwargs) -> DomainError:
    with pytest.raises(DomainError) as info:
        call(*args, **kwargs)
    return info.value


# --- person_id -----------------------------------------------------------------------------


@pytest.mark.parametrize("pid", VALID_IDS)
def test_the_domain_examples_are_valid_person_ids(pid):  # rule I2
    assert ids.person_id(pid, TODAY) == pid


@pytest.mark.parametrize("pid", VALID_IDS)
def test_the_check_character_follows_iso_7064_mod_11_2(pid):  # rule I2
    assert ids.check_character(pid[:17]) == check_char(pid[:17]) == pid[17]


def test_a_lower_case_x_is_normalised_to_upper_case():  # rule I1
    assert ids.person_id("11010519491231002x", TODAY) == "11010519491231002X"


@pytest.mark.parametrize("wrong", sorted(set("0123456789X") - {"2"}))
def test_every_wrong_check_character_is_refused(wrong):  # rule I2
    error = refusal(ids.person_id, "43010219800517001" + wrong, TODAY)
    assert error.reason == "INVALID_PERSON_ID"
    assert error.code == "INVALID_ARGUMENT"


@pytest.mark.parametrize(
    "pid",
    ["", "43010219800517001", "4301021980051700120", "430102800517001", "1" * 30],
)
def test_an_id_that_is_not_18_characters_is_refused(pid):  # rule I1
    assert refusal(ids.person_id, pid, TODAY).reason == "INVALID_PERSON_ID"


@pytest.mark.parametrize(
    "pid",
    [
        "4301021980O5170012",  # letter O for a zero
        "43010219800517X012",  # X only as the check character
        "43010219800517001A",  # a check character outside 0-9, X
        "４30102198005170012",  # full-width digit
        "43010-198005170012",
    ],
)
def test_an_id_with_non_digits_is_refused(pid):  # rule I1
    assert refusal(ids.person_id, pid, TODAY).reason == "INVALID_PERSON_ID"


def test_a_value_that_is_not_a_string_is_refused():
    assert refusal(ids.person_id, None, TODAY).reason == "INVALID_PERSON_ID"


@pytest.mark.parametrize("born", ["19800230", "19810229", "19801301", "19800000", "19800532"])
def test_an_impossible_birth_date_is_refused_even_with_a_right_check_char(born):  # rule I1
    pid = with_check(f"430102{born}001")
    assert refusal(ids.person_id, pid, TODAY).reason == "INVALID_PERSON_ID"


def test_a_leap_day_birth_date_is_accepted():  # rule I1
    pid = with_check("43010219800229001")
    assert ids.person_id(pid, TODAY) == pid


def test_a_birth_date_in_the_future_is_refused():  # rule I1
    tomorrow = TODAY + dt.timedelta(days=1)
    pid = with_check(f"430102{tomorrow:%Y%m%d}001")
    assert refusal(ids.person_id, pid, TODAY).reason == "INVALID_PERSON_ID"


def test_a_person_born_today_is_valid():  # rule I1
    pid = with_check(f"430102{TODAY:%Y%m%d}001")
    assert ids.person_id(pid, TODAY) == pid


def test_a_birth_year_before_1900_is_refused_and_1900_is_accepted():
    assert refusal(ids.person_id, with_check("43010218991231001"), TODAY).reason == (
        "INVALID_PERSON_ID"
    )
    assert ids.person_id(with_check("43010219000101001"), TODAY)


@pytest.mark.parametrize("prefix", ["99", "00", "10", "16", "20", "24", "30", "47", "55", "72"])
def test_an_id_from_an_unknown_province_is_refused(prefix):
    pid = with_check(f"{prefix}010219800517001")
    assert refusal(ids.person_id, pid, TODAY).reason == "INVALID_PERSON_ID"


def test_error_messages_never_show_the_raw_id():  # rule I3
    pid = "430102198005170013"
    error = refusal(ids.person_id, pid, TODAY, field="binder_id")
    assert pid not in str(error)
    assert str(error).startswith("INVALID_PERSON_ID: binder_id")


def test_birth_date_reads_the_date_inside_the_id():  # rule I1
    assert ids.birth_date("11010519491231002X") == dt.date(1949, 12, 31)


# --- mask and make_person_id ---------------------------------------------------------------


def test_mask_keeps_the_first_and_last_four_characters():  # rule I3
    assert ids.mask("430102198005170012") == "4301**********0012"


def test_mask_hides_a_short_value_entirely():  # rule I3
    assert ids.mask("12345678") == "********"


@pytest.mark.parametrize("pid", VALID_IDS)
def test_make_person_id_rebuilds_the_domain_examples(pid):  # rule I2
    born = dt.date(int(pid[6:10]), int(pid[10:12]), int(pid[12:14]))
    assert ids.make_person_id(pid[:6], born, int(pid[14:17])) == pid


@pytest.mark.parametrize("region", ["430102", "610402", "110105", "510104", "820000"])
@pytest.mark.parametrize("sequence", [0, 1, 2, 57, 999])
def test_a_made_person_id_round_trips_through_validation(region, sequence):
    born = dt.date(1900, 1, 1) + dt.timedelta(days=sequence * 37)
    pid = ids.make_person_id(region, born, sequence)
    assert ids.person_id(pid, TODAY) == pid
    assert ids.birth_date(pid) == born
    assert pid[17] == check_char(pid[:17])


# --- region codes --------------------------------------------------------------------------


@pytest.mark.parametrize("code", ["430100", "610400", "110105", "820000"])
def test_a_six_digit_code_of_a_known_province_is_a_region(code):
    assert ids.region_code(code) == code


@pytest.mark.parametrize("province", PROVINCE_CODES)
def test_every_province_code_of_the_api_starts_a_valid_region(province):
    assert ids.region_code(f"{province}0100") == f"{province}0100"


@pytest.mark.parametrize(
    "code", ["990100", "000000", "100100", "430100 ", "43010", "4301000", "4301a0", "", "４30100"]
)
def test_a_malformed_region_code_is_refused(code):
    assert refusal(ids.region_code, code).reason == "INVALID_REGION_CODE"


# --- amounts -------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [1, 100, 10**12])
def test_an_amount_between_one_fen_and_10_to_the_12_is_accepted(value):
    assert ids.amount(value) == value


@pytest.mark.parametrize("value", [0, -1, -(10**12), 10**12 + 1])
def test_an_amount_outside_the_limits_is_refused(value):
    assert refusal(ids.amount, value).reason == "INVALID_AMOUNT"


def test_zero_is_accepted_only_where_allowed():  # rule S7
    assert ids.amount(0, allow_zero=True) == 0
    assert ids.amount(10**12, allow_zero=True) == 10**12
    assert refusal(ids.amount, -1, allow_zero=True).reason == "INVALID_AMOUNT"
    assert refusal(ids.amount, 10**12 + 1, allow_zero=True).reason == "INVALID_AMOUNT"


def test_the_amount_error_names_the_field():
    assert "fund_pay_fen" in refusal(ids.amount, -5, field="fund_pay_fen").message


# --- text, tokens, request ids, institutions -----------------------------------------------


def test_a_10_kb_text_is_refused():
    assert refusal(ids.text, "a" * 10_240, "memo").reason == "INVALID_ARGUMENT"


def test_text_is_limited_to_256_characters_not_bytes():
    assert ids.text("李" * 256, "name") == "李" * 256
    assert refusal(ids.text, "李" * 257, "name").reason == "INVALID_ARGUMENT"


@pytest.mark.parametrize("value", ["", "   "])
def test_required_text_must_not_be_blank(value):
    assert refusal(ids.text, value, "name").reason == "INVALID_ARGUMENT"


@pytest.mark.parametrize(
    "value",
    ["a\x00b", "\x1b[31mred", "line\nbreak", "tab\t", "\x7f", "\x85", "\u202eevil",
     "\u202aembed", "\u2066isolate\u2069", "\u2067x"],
)  # fmt: skip
def test_free_text_refuses_controls_and_bidi_overrides(value):  # security issue: hostile input
    assert refusal(ids.text, f"张{value}三", "name").reason == "INVALID_ARGUMENT"


@pytest.mark.parametrize("value", ["欧阳娜娜", "Zhang Wei", "退费 (2026-11)", "😀", "\u200d"])
def test_free_text_keeps_every_ordinary_character(value):
    assert ids.text(value, "memo") == value


def test_optional_text_may_be_empty_but_not_too_long():
    assert ids.text("", "memo", required=False) == ""
    assert refusal(ids.text, "m" * 257, "memo", required=False).reason == "INVALID_ARGUMENT"


@pytest.mark.parametrize("value", ["a", "r-1", "!", "~", "x" * 64, "req_2025-06-01T10:00:00Z#7"])
def test_a_request_id_of_1_to_64_printable_ascii_characters_is_accepted(value):
    assert ids.request_id(value) == value
    assert ids.token(value, "hold_id") == value


@pytest.mark.parametrize("value", ["", "x" * 65, "请求一", "r\n1", "r\t1", "r\x00", "r\x7f"])
def test_a_request_id_that_is_empty_too_long_or_not_printable_ascii_is_refused(value):
    assert refusal(ids.request_id, value).reason == "INVALID_ARGUMENT"
    assert refusal(ids.token, value, "hold_id").reason == "INVALID_ARGUMENT"


def test_a_token_may_have_its_own_length_limit():  # medins_setl_id is 1-30 characters
    assert ids.token("S" * 30, "medins_setl_id", 30) == "S" * 30
    assert refusal(ids.token, "S" * 31, "medins_setl_id", 30).reason == "INVALID_ARGUMENT"


@pytest.mark.parametrize("value", ["H43010500001", "P61040000099"])
def test_an_institution_id_is_h_or_p_and_eleven_digits(value):
    assert ids.institution_id(value) == value


@pytest.mark.parametrize(
    "value", ["", "h43010500001", "X43010500001", "H4301050000", "H430105000011", "H4301050000A"]
)
def test_a_malformed_institution_id_is_refused(value):
    assert refusal(ids.institution_id, value).reason == "INVALID_ARGUMENT"


# --- dates, items, page sizes, enums -------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [("2024-02-29", dt.date(2024, 2, 29)), ("1900-01-01", dt.date(1900, 1, 1))],
)
def test_a_yyyy_mm_dd_date_is_parsed(value, expected):
    assert ids.date(value, "start_date") == expected


@pytest.mark.parametrize(
    "value",
    ["", "2023-02-29", "2024-02-30", "2024-13-01", "2024-2-9", "20240229", "2024/02/29",
     "2024-02-29T00:00", "29-02-2024", " 2024-02-2"],
)  # fmt: skip
def test_a_date_not_in_yyyy_mm_dd_form_is_refused(value):
    assert refusal(ids.date, value, "start_date").reason == "INVALID_DATE"


def test_a_list_of_1_to_100_items_is_accepted():
    ids.items(["a"], "person_ids")
    ids.items(["a"] * 100, "person_ids")


@pytest.mark.parametrize("count", [0, 101])
def test_an_empty_list_or_one_over_100_items_is_refused(count):
    assert refusal(ids.items, ["a"] * count, "person_ids").reason == "INVALID_ARGUMENT"


def test_page_size_defaults_to_50():
    assert ids.page_size(0) == 50


@pytest.mark.parametrize("value", [1, 50, 499, 500])
def test_page_size_up_to_500_is_kept(value):
    assert ids.page_size(value) == value


@pytest.mark.parametrize("value", [501, 10_000, -1])
def test_page_size_over_500_or_negative_is_refused(value):
    assert refusal(ids.page_size, value).reason == "INVALID_ARGUMENT"


def test_enum_value_accepts_only_known_set_values():
    known = frozenset({1, 2})
    assert ids.enum_value(2, known, "insurance_type") == 2
    assert refusal(ids.enum_value, 0, known, "insurance_type").reason == "INVALID_ARGUMENT"
    assert refusal(ids.enum_value, 7, known, "insurance_type").reason == "INVALID_ARGUMENT"


def test_iso_week_dates_are_not_dates():
    with pytest.raises(DomainError) as info:
        ids.date("2024-W01-1", "start_date")
    assert info.value.reason == "INVALID_DATE"


def test_surrounding_whitespace_makes_an_id_invalid():  # rule I1
    with pytest.raises(DomainError) as info:
        ids.person_id(" 430102198005170012", dt.date(2026, 11, 23))
    assert info.value.reason == "INVALID_PERSON_ID"
