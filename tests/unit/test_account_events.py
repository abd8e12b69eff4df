"""The account event stream's contract (services.common.account_events) matches what the
account scripts publish: every event type an account script emits is a type of the contract,
and the consumers' closing types are among them."""

import pathlib
import re

from services.common import account_events

LUA = pathlib.Path(__file__).resolve().parents[2] / "services" / "account" / "lua"


def test_every_emitted_event_type_is_in_the_contract():
    emitted = set()
    for script in LUA.glob("*.lua"):
        emitted |= set(re.findall(r"'([A-Z_]+)'", " ".join(
            line for line in script.read_text().splitlines() if "emit(" in line)))  # fmt: skip
    assert emitted and emitted <= account_events.TYPES, emitted - account_events.TYPES
    assert emitted >= account_events.CLOSING
