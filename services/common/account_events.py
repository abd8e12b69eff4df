"""The account event stream: the contract between the account service, which publishes, and
the services that consume it (the binding service lapses bindings on CLOSED and
TRANSFERRED_OUT, and a binder's on TYPE_CHANGED to resident). One place for its name and its
events' shape.

Each change of an account's status, region or insurance type, and a stop of its insurance
(A9), is one entry of `events:account`, published from the account's outbox
(services.account.events) with the fields below, all strings:

    event_id        `<person_id>:<n>`, n the account's own event number (1, 2, ...; events
                    made before it was kept carry their outbox entry id instead), stable: a
                    consumer drops a repeat by it
    type            one of TYPES
    person_id       whose account
    status          AccountStatus number after the change
    region_code     region after the change
    insurance_type  InsuranceType number
    at_ms           when the change was made (Redis server time, ms since the epoch)

The stream is trimmed to about STREAM_MAXLEN entries (README "What is kept").
"""

from __future__ import annotations

STREAM = "events:account"
STREAM_MAXLEN = 1_000_000
TYPES = frozenset(
    {"OPENED", "REOPENED", "SUSPENDED", "RESUMED", "REGION_CHANGED", "CLOSED", "TRANSFERRED_OUT",
     "TYPE_CHANGED", "STOPPED"}
)  # fmt: skip
CLOSING = frozenset({"CLOSED", "TRANSFERRED_OUT"})  # the account is gone for every use


def event_id(person_id: str, number: str) -> str:
    return f"{person_id}:{number}"
