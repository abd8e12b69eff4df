"""Invariant 4 over one person's bindings (as binder and as beneficiary, in each province that
holds his views) and over one binding record: the limit of his province's policy, the binding
service's views of each binding (services.binding.store), his family-aid grants and the payer
order the account service keeps for him (services.account.grants, orders)."""

from __future__ import annotations

from collections import Counter

import orjson

from services.audit.model import (
    Json,
    PersonBundle,
    ProvinceViews,
    RecordBundle,
    Violation,
    problems,
    violation,
)
from services.binding.store import provinces_of
from services.common.enums import BindingStatus
from services.common.ids import mask
from services.common.policy import Policy

_ACTIVE = str(int(BindingStatus.ACTIVE))
_PENDING = str(int(BindingStatus.PENDING_CONSENT))


def _active(rec: Json | None) -> bool:
    return rec is not None and str(rec.get("status")) == _ACTIVE


def _pending(rec: Json | None) -> bool:
    """Awaiting the relative's consent (B14): it holds its pair and counts toward the limit,
    and is on no payer list."""
    return rec is not None and str(rec.get("status")) == _PENDING


def _live(rec: Json | None) -> bool:
    return _active(rec) or _pending(rec)


def _side(binding_id: str, binder: bool) -> str | None:
    """The province the id gives the binder's (or the beneficiary's) views; None if the id is
    not one the binding service makes."""
    try:
        return provinces_of(binding_id)[0 if binder else 1]
    except ValueError:
        return None


def check_person(p: PersonBundle, policy: Policy) -> list[Violation]:
    """Invariant 4 from one person's views: his binder limit in each province, both of his
    indexes against the records, his grants as binder, the order the account service keeps."""
    who = mask(p.person_id)
    out: list[Violation] = []
    index: list[str] = []
    for v in p.provinces.values():
        index += _as_binder(p, v) + _as_beneficiary(p, v)
        live = [i for i in v.binder_all if _live(p.records.get(i))]
        limit = policy.for_region(v.province).max_bindings
        if len(live) > limit:
            detail = f"{len(live)} active bindings in province {v.province}, the limit is {limit}"
            out += [violation("binding.limit", who, detail)]
        active = sorted(i for i in live if _active(p.records.get(i)))
        out += problems("binding.grant", who, [f for i in active for f in _grant(p, i)])
    out += problems("binding.index", who, index)
    return out + problems("order.account", who, _order(p))


def _owned(p: PersonBundle, ids: list[str], v: ProvinceViews, binder: bool) -> list[str]:
    """Each id of his index has a record that names him on that side, under this province."""
    role, found = "binder" if binder else "beneficiary", []
    for i in ids:
        rec = p.records.get(i)
        if rec is None:
            found.append(f"binding {i} of his {role} index has no record")
        elif rec.get(f"{role}_id") != p.person_id or _side(i, binder) != v.province:
            found.append(f"binding {i} of his {role} index in {v.province} is not his there")
    return found


def _as_binder(p: PersonBundle, v: ProvinceViews) -> list[str]:
    """His active set is his ACTIVE bindings and those awaiting consent; each pair key holds
    the pair's such binding and no pair key outlives it (or the pair could never bind again:
    B7)."""
    found = _owned(p, v.binder_all, v, binder=True)
    active = {i for i in v.binder_all if _live(p.records.get(i))}
    found += [f"active set lists {i}, which is not an active binding of his"
              for i in sorted(v.binder_active - active)]  # fmt: skip
    found += [f"active binding {i} is missing from his active set"
              for i in sorted(active - v.binder_active)]  # fmt: skip
    by_pair = {str((p.records[i] or {}).get("beneficiary_id")): i for i in sorted(active)}
    for beneficiary, held in sorted(v.pairs.items()):
        if held != by_pair.get(beneficiary):
            found.append(f"pair key for {mask(beneficiary)} holds {held}, the active binding "
                         f"is {by_pair.get(beneficiary)}")  # fmt: skip
    return found


def _as_beneficiary(p: PersonBundle, v: ProvinceViews) -> list[str]:
    """His payer list is exactly his ACTIVE bindings here, each once (B10); those awaiting his
    consent are exactly the ones he is asked about (B14)."""
    found = _owned(p, v.beneficiary_all, v, binder=False)
    waiting = {i for i in v.beneficiary_all if _pending(p.records.get(i))}
    found += [f"binding {i} awaits his consent, which is not a pending binding for him"
              for i in sorted(set(v.awaiting) - waiting)]  # fmt: skip
    found += [f"pending binding {i} is missing from what awaits his consent"
              for i in sorted(waiting - set(v.awaiting))]  # fmt: skip
    active = {i for i in v.beneficiary_all if _active(p.records.get(i))}
    twice = [i for i, n in Counter(v.payers).items() if n > 1]
    found += [f"payer list repeats {i}" for i in twice]
    found += [f"payer list lists {i}, which is not an active binding for him"
              for i in v.payers if i not in active]  # fmt: skip
    found += [f"active binding {i} is missing from his payer list"
              for i in sorted(active - set(v.payers))]  # fmt: skip
    return found


def _grant(p: PersonBundle, binding_id: str) -> list[str]:
    """The grant the binding service wrote before the binding existed (lifecycle.create), for
    the same beneficiary and dates: without it the binder's account pays nothing (S4)."""
    rec, g = p.records[binding_id] or {}, p.grants.get(binding_id)
    if g is None or not g.get("active"):
        return [f"active binding {binding_id} has no active grant on his account"]
    fields = ("beneficiary_id", "start_date", "end_date")
    wrong = [f for f in fields if g.get(f) != rec.get(f)]
    return [f"the grant of {binding_id} differs in {', '.join(wrong)}"] if wrong else []


def _order(p: PersonBundle) -> list[str]:
    """What services.binding.lifecycle.push_order last pushed must be at the account service:
    his ACTIVE payers, province by province in sorted order, under the sum of the provinces'
    versions. A push still marked in an outbox is due from the relay: not compared."""
    if any(v.order_pending for v in p.provinces.values()):
        return []
    want = [
        [str((p.records[i] or {}).get("binder_id")), i]
        for _, v in sorted(p.provinces.items()) for i in v.payers if _active(p.records.get(i))
    ]  # fmt: skip
    version = sum(v.version for v in p.provinces.values())
    try:
        have = orjson.loads(p.order) if p.order else []
    except orjson.JSONDecodeError:
        have = None
    if not isinstance(have, list) or not all(isinstance(x, list) and len(x) == 2 for x in have):
        return ["the account service's payer order is unreadable"]
    found = []
    if have != want:
        found.append(f"the account service pays from {_names(have)}, the binding service's "
                     f"order is {_names(want)}")  # fmt: skip
    if p.order_version != version:
        found.append(f"the account service has order version {p.order_version}, the binding "
                     f"service {version}")  # fmt: skip
    return found


def _names(order: list[list[str]]) -> str:
    return "[" + ", ".join(mask(str(pair[0])) for pair in order) + "]"


def check_record(r: RecordBundle) -> list[Violation]:
    """A binding record is listed by both people's indexes, under the provinces its id names,
    and both people's `where` sets name those provinces (else no lookup finds it)."""
    found = []
    if r.record.get("binding_id") != r.binding_id:
        found.append(f"the record names binding {r.record.get('binding_id')}")
    for listed, what in ((r.in_binder_all, "the binder's index"),
                         (r.in_beneficiary_all, "the beneficiary's index"),
                         (r.binder_where, "the binder's provinces"),
                         (r.beneficiary_where, "the beneficiary's provinces")):  # fmt: skip
        if not listed:
            found.append(f"missing from {what}")
    return problems("binding.index", r.binding_id, found)
