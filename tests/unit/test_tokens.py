"""Tokens (API.md "Tokens"): `exp` is an integer
at most GONGJI_TOKEN_MAX_TTL_S ahead of now, else UNAUTHENTICATED."""

import datetime as dt

import jwt
import pytest

from services.common.auth import MAX_TTL_S, Tokens
from services.common.clock import FixedClock
from services.common.errors import DomainError

SECRET = b"a secret of thirty-two bytes or more, for tests"
# The services' clock, held still: expiry is judged by it alone.
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


def tokens(max_ttl_s: int = MAX_TTL_S) -> Tokens:
    return Tokens(SECRET, max_ttl_s, FixedClock(NOW))


def signed(exp: object) -> str:
    claims = {"sub": "430102198005170012", "role": "citizen", "exp": exp}
    return "Bearer " + jwt.encode(claims, SECRET, algorithm="HS256")


def refused(header: str, t: Tokens | None = None) -> str:
    with pytest.raises(DomainError) as info:
        (t or tokens()).verify(header)
    assert info.value.reason == "UNAUTHENTICATED"
    return str(info.value)


def test_a_token_that_runs_out_in_the_year_9999_is_refused():
    refused(signed(253402300799))


def test_an_exp_given_as_a_string_or_a_fraction_is_refused():
    soon = int(dt.datetime.now(dt.UTC).timestamp()) + 60
    for exp in (str(soon), float(soon), f"{soon}.0"):
        refused(signed(exp))


def test_an_exp_at_most_the_limit_ahead_is_accepted_one_second_more_is_not():
    at = int(NOW.timestamp())
    assert tokens().verify(signed(at + MAX_TTL_S)).role == "citizen"
    refused(signed(at + MAX_TTL_S + 1))


def test_the_limit_comes_from_settings():
    at = int(NOW.timestamp())
    short = tokens(max_ttl_s=600)
    assert short.verify(signed(at + 600)).sub == "430102198005170012"
    assert "600 s" in refused(signed(at + 601), short)


def test_minting_stays_within_the_limit():
    t = tokens(max_ttl_s=600)
    assert t.verify("Bearer " + t.mint("operator", "staff-1", 600)).role == "operator"
    with pytest.raises(ValueError, match="at most 600 s"):
        t.mint("operator", "staff-1", 601)


def test_expiry_is_judged_by_the_services_clock_alone():
    # a clock years behind the real one: what it minted is good until its own time runs out
    past = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    token = "Bearer " + Tokens(SECRET, 3600, FixedClock(past)).mint("operator", "staff-1", 600)
    assert Tokens(SECRET, 3600, FixedClock(past)).verify(token).role == "operator"
    late = Tokens(SECRET, 3600, FixedClock(past + dt.timedelta(seconds=600)))
    assert "expired" in refused(token, late)
