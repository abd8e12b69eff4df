"""Per-province policy profiles (docs/RULES.md B13) and the commercial-insurance limit (A3)."""

from pathlib import Path

import pytest

from services.common.policy import Policy, PolicyError, Profile, load, parse

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "policy.example.toml"
SEEDS = frozenset({"spouse", "parent", "child"})
EIGHT_CLOSE_RELATIVES = frozenset(
    {"spouse", "parent", "child", "sibling", "grandparent", "grandchild"}
)


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "policy.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def load_error(tmp_path: Path, text: str) -> str:
    with pytest.raises(PolicyError) as info:
        load(write(tmp_path, text))
    return str(info.value)


# --- the built-in default ------------------------------------------------------------------


def test_the_default_profile_is_the_seeds_rules():  # rules B3, B4, B5, A3
    profile = Profile()
    assert profile.relationships == SEEDS
    assert profile.max_bindings == 10
    assert profile.same_province is True
    assert profile.commercial_ratio_percent == 40


def test_the_default_profile_refuses_siblings_and_grandparents():  # rule B3
    profile = Profile()
    assert all(profile.allows(r) for r in SEEDS)
    assert not any(profile.allows(r) for r in ("sibling", "grandparent", "grandchild", "self"))


def test_without_a_policy_file_every_province_uses_the_default():  # rule B13
    policy = load("")
    assert policy == Policy()
    assert policy.for_region("430100") == policy.for_region("510100") == Profile()


# --- the example file ----------------------------------------------------------------------


def test_the_example_file_switches_sichuan_to_the_eight_close_relatives():  # rule B13
    policy = load(str(EXAMPLE))
    sichuan = policy.for_region("510104")
    assert sichuan.relationships == EIGHT_CLOSE_RELATIVES
    assert sichuan.allows("sibling") and sichuan.allows("grandchild")
    assert (sichuan.max_bindings, sichuan.same_province, sichuan.commercial_ratio_percent) == (
        10, True, 40,
    )  # fmt: skip


def test_the_example_file_keeps_the_seeds_rules_elsewhere():  # rule B13
    policy = load(str(EXAMPLE))
    assert policy.default == Profile()
    assert policy.for_region("430100") == Profile()
    assert not policy.for_region("610400").allows("sibling")


# --- overrides -----------------------------------------------------------------------------


def test_a_province_table_overrides_only_the_keys_it_names():  # rule B13
    policy = parse(
        {
            "default": {"max_bindings": 5, "commercial_ratio_percent": 30},
            "province": {"51": {"same_province": False}},
        }
    )
    sichuan = policy.for_region("510100")
    assert sichuan.same_province is False
    assert (sichuan.max_bindings, sichuan.commercial_ratio_percent) == (5, 30)
    assert sichuan.relationships == SEEDS
    assert policy.for_region("430100") == Profile(max_bindings=5, commercial_ratio_percent=30)


def test_a_partial_default_table_inherits_the_built_in_values():
    policy = parse({"default": {"relationships": ["spouse"]}})
    assert policy.default == Profile(relationships=frozenset({"spouse"}))


def test_a_province_is_chosen_by_the_first_two_digits_of_the_region():
    policy = parse({"province": {"43": {"max_bindings": 3}}})
    assert policy.for_region("430100").max_bindings == 3
    assert policy.for_region("431000").max_bindings == 3
    assert policy.for_region("610400").max_bindings == 10


def test_an_empty_policy_file_means_the_built_in_default(tmp_path):
    assert load(write(tmp_path, "")) == Policy()


# --- malformed files -----------------------------------------------------------------------


def test_a_missing_file_is_a_policy_error_naming_the_path(tmp_path):
    path = str(tmp_path / "nowhere.toml")
    with pytest.raises(PolicyError, match=r"nowhere\.toml"):
        load(path)


def test_a_file_that_is_not_toml_is_a_policy_error(tmp_path):
    message = load_error(tmp_path, "[default\nmax_bindings = 10\n")
    assert "not valid TOML" in message
    assert "policy.toml" in message


def test_an_unknown_key_is_a_policy_error_naming_it(tmp_path):
    message = load_error(tmp_path, "[default]\nmax_binding = 10\n")
    assert "unknown keys" in message and "max_binding" in message
    assert "[default]" in message


def test_an_unknown_key_in_a_province_names_the_province(tmp_path):
    message = load_error(tmp_path, '[province."51"]\nrelations = ["sibling"]\n')
    assert '[province."51"]' in message and "relations" in message


def test_an_unknown_table_is_a_policy_error(tmp_path):
    assert "unknown tables" in load_error(tmp_path, "[defaults]\nmax_bindings = 10\n")


def test_an_unknown_relationship_is_a_policy_error_naming_it(tmp_path):
    message = load_error(tmp_path, '[default]\nrelationships = ["spouse", "cousin"]\n')
    assert "unknown relationship" in message and "cousin" in message


def test_an_empty_relationship_list_is_a_policy_error(tmp_path):
    assert "non-empty list" in load_error(tmp_path, "[default]\nrelationships = []\n")


@pytest.mark.parametrize("code", ["99", "5", "510", "ab", "00"])
def test_a_province_table_with_a_bad_code_is_a_policy_error(tmp_path, code):
    message = load_error(tmp_path, f'[province."{code}"]\nmax_bindings = 3\n')
    assert "not a province code" in message


@pytest.mark.parametrize("value", ['"10"', "2.5", "true", "0", "101"])
def test_max_bindings_must_be_a_whole_number_in_range(tmp_path, value):
    message = load_error(tmp_path, f"[default]\nmax_bindings = {value}\n")
    assert "max_bindings must be a whole number" in message


@pytest.mark.parametrize("value", ["-1", "101", "40.5", '"40"'])
def test_the_commercial_ratio_must_be_a_whole_percent(tmp_path, value):
    message = load_error(tmp_path, f"[default]\ncommercial_ratio_percent = {value}\n")
    assert "commercial_ratio_percent must be a whole number" in message


@pytest.mark.parametrize("key", ["same_province", "accepts_transfers"])
def test_the_yes_no_keys_must_be_booleans(tmp_path, key):
    message = load_error(tmp_path, f'[default]\n{key} = "yes"\n')
    assert f"{key} must be true or false" in message


def test_a_province_may_refuse_balances_moved_in():  # rule A5
    policy = parse({"province": {"54": {"accepts_transfers": False}}})
    assert not policy.for_region("540100").accepts_transfers
    assert policy.for_region("430102").accepts_transfers


def test_a_profile_that_is_not_a_table_is_a_policy_error(tmp_path):
    assert "must be a table" in load_error(tmp_path, "default = 3\n")


# --- the commercial-insurance limit --------------------------------------------------------


@pytest.mark.parametrize(
    ("available", "limit"),
    [(1001, 400), (99, 39), (0, 0), (1, 0), (2, 0), (3, 1), (1000, 400), (10**12, 4 * 10**11)],
)
def test_the_commercial_limit_is_40_percent_rounded_down_to_the_fen(available, limit):  # rule A3
    assert Profile().commercial_limit(available) == limit


@pytest.mark.parametrize(
    ("ratio", "available", "limit"),
    [(25, 1001, 250), (33, 1001, 330), (0, 5000, 0), (100, 5000, 5000)],
)
def test_the_commercial_ratio_is_policy_data(ratio, available, limit):  # rule A3
    policy = parse({"province": {"61": {"commercial_ratio_percent": ratio}}})
    assert policy.for_region("610400").commercial_limit(available) == limit
    assert policy.for_region("430100").commercial_limit(1001) == 400


def test_a_province_key_that_is_not_a_table_is_refused():  # rule B13
    with pytest.raises(PolicyError, match="province"):
        parse({"province": 5})


def test_full_width_province_digits_are_refused():  # rule B13
    with pytest.raises(PolicyError, match="province code"):
        parse({"province": {"５１": {}}})


def test_a_file_that_is_not_utf8_is_refused(tmp_path):
    path = tmp_path / "policy.toml"
    path.write_bytes(b"[default]\nmax_bindings = \xff\n")
    with pytest.raises(PolicyError, match=r"policy\.toml"):
        load(str(path))
