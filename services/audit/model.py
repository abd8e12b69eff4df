"""What the audit reads and what it finds: the record bundles the reader hands to the checks,
and the violations the checks return. Pure data, no I/O.

A bundle holds the stores' records decoded as they are (`{}` for a value that is not a JSON
object, None for a ledger entry the services' parser refuses), so a check can say what is wrong
with a record instead of failing on it.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from services.account.domain import Entry
from services.binding.domain import Views
from services.common.logs import mask_ids

Json = dict[str, Any]

# rule -> (the invariant it belongs to, as services.audit numbers them; what it asserts).
RULES: dict[str, tuple[int, str]] = {
    "account.record": (1, "the account hash has every field, as whole numbers"),
    "account.ledger-sum": (1, "balance = the sum of the account's ledger entries"),
    "account.negative": (1, "balance >= 0"),
    "ledger.sequence": (1, "entries numbered 1..seq, indexed, each balance_after the running sum"),
    "ledger.refund": (2, "each refund entry answers exactly one debit of the same amount"),
    "payment.record": (2, "the payment record is well formed for its state"),
    "payment.bill": (2, "the bill kept with the payment adds up with its legs"),
    "payment.debit": (2, "each leg has its committed debit entry on the payer's ledger"),
    "payment.unlisted-debit": (2, "each settlement/premium debit is a leg of its payment"),
    "payment.refund": (2, "a cancelled payment refunded each leg once; a paid one none"),
    "payment.index": (2, "consumption-record indexes and premium-year marker name the payment"),
    "payment.in-flight": (3, "no payment is still being made past the recovery window"),
    "request.stuck": (3, "no request claim stands without a lease or past the recovery window"),
    "lock.stuck": (3, "no payment's account lock outlives its lease and the recovery window"),
    "binding.limit": (4, "a binder's active bindings are within his province's max_bindings"),
    "binding.index": (4, "binding records, binder and beneficiary indexes agree"),
    "binding.grant": (4, "each active binding has its family-aid grant on the binder's account"),
    "grant.orphan": (4, "each active family-aid grant belongs to an active binding"),
    "quota.reserved": (1, "the reservation is what remains of the ACTIVE quotas, within balance"),
    "quota.used": (2, "a quota's used is its legs and premiums less the refunds back to it"),
    "order.account": (4, "the payer order at the account service is the binding service's"),
}


@dataclasses.dataclass(frozen=True)
class Violation:
    rule: str
    subject: str
    detail: str


def violation(rule: str, subject: str, detail: str) -> Violation:
    """A violation with every person id in it masked (rule I3): subjects and details name
    accounts, and an audit report is read and passed around by people."""
    assert rule in RULES, rule
    return Violation(rule, mask_ids(subject), mask_ids(detail))


def problems(rule: str, subject: str, found: list[str], shown: int = 3) -> list[Violation]:
    """All the problems one rule found on one subject, as one violation: the first `shown`
    spelled out, the rest counted (a broken ledger breaks many entries at once)."""
    if not found:
        return []
    more = f" (and {len(found) - shown} more)" if len(found) > shown else ""
    return [violation(rule, subject, "; ".join(found[:shown]) + more)]


@dataclasses.dataclass(frozen=True)
class AccountBundle:
    """One account's keys (store.account_keys), read in one MULTI, and the records elsewhere
    that its debits and grants name."""

    person_id: str
    fields: dict[str, str]  # the account hash
    ledger: list[Entry | None]  # in order, entry 1 first; None: an entry no script can read
    index: dict[str, str]  # entry_id -> its 1-based place in the ledger
    holds: dict[str, Json]  # hold_id -> hold, kept from before holds were retired
    refunds: dict[str, Json]  # debit entry_id -> {refund_id, entry_id}
    grants: dict[str, Json]  # binding_id -> family-aid grant
    now_ms: int  # the Redis server's clock when the account was read
    funds: dict[str, Any] = dataclasses.field(default_factory=dict)  # quota_id -> kept array
    payments: dict[str, Json | None] = dataclasses.field(default_factory=dict)  # by payment id
    bindings: dict[str, Json | None] = dataclasses.field(default_factory=dict)  # by binding id
    # payments its debits (or its lock) name that are still being made in steps (their record
    # is the plan's journal: stepwise.py)
    in_flight: frozenset[str] = frozenset()


@dataclasses.dataclass(frozen=True)
class Leg:
    """What the payer's account holds for one share of a payment."""

    debit: Json | None  # the ledger entry the payer's index names for the share's entry_id
    refund: Json | None  # the payer's refund record for that debit
    refund_entry: Json | None  # the ledger entry that refund record names
    paid_by: bool  # the payment is in the payer's family-aid consumption index


@dataclasses.dataclass(frozen=True)
class PaymentBundle:
    payment_id: str
    record: Json
    legs: tuple[Leg, ...]  # one per share, in the record's order
    paid_for: bool  # the payment is in the patient's consumption index
    premium_marker: str | None  # what the patient's premium-year key names (premiums only)
    now_ms: int = 0  # the Redis server's clock when the record was read


@dataclasses.dataclass(frozen=True)
class ProvinceViews(Views):
    """One person's binding views under one province's hash tag (binding.store.Keys)."""

    province: str
    order_pending: bool  # marked in the province's order outbox: a push is due


@dataclasses.dataclass(frozen=True)
class PersonBundle:
    """Everything the binding service keeps about one person, and what the account service
    keeps of it: his grants as binder, and the payer order pushed for him."""

    person_id: str
    provinces: dict[str, ProvinceViews]
    records: dict[str, Json | None]  # every binding id his views name -> its record
    grants: dict[str, Json]  # on his account, binding_id -> grant
    order: str | None  # his account's `payers` field (JSON list of [binder, binding_id])
    order_version: int  # his account's `payers_v` field


@dataclasses.dataclass(frozen=True)
class RecordBundle:
    """One binding record and whether the indexes that must list it do."""

    binding_id: str
    record: Json
    in_binder_all: bool
    in_beneficiary_all: bool
    binder_where: bool  # the binder's province is in his `where` set
    beneficiary_where: bool


@dataclasses.dataclass(frozen=True)
class RequestRecord:
    """A request's idempotency record (services.common.idempotency): a claim while the request
    runs, its answer once it has run."""

    key: str
    value: Json
    ttl_ms: int  # PTTL: -1 = no expiry
    idle_s: int | None  # OBJECT IDLETIME before the audit read it; None = not tracked
