"""The binding service's mutating RPCs as the workload makes them (rules B1-B14): bindings made
by the counter or by the binder himself (then awaiting an adult relative's consent), removed,
confirmed, and payer orders changed; each predicted and applied through the model."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from gongji.binding.v1 import binding_pb2 as pb
from gongji.common.v1 import common_pb2 as cpb
from services.binding.domain import RELATIONSHIPS, age_on
from services.common import ids
from services.common.auth import Caller
from services.common.enums import BindingStatus
from services.sim.keyed import Keyed
from services.sim.model import (
    ACTIVE,
    B_ACTIVE,
    B_PENDING,
    CONSENT_MS,
    EMPLOYEE,
    SUSPENDED,
    Binding,
    Model,
)
from services.sim.ops import Op, World

REMOVED, LAPSED = int(BindingStatus.REMOVED), int(BindingStatus.LAPSED)
_ELDER_FIRST = {cpb.RELATIONSHIP_PARENT: True, cpb.RELATIONSHIP_CHILD: False}

Today = Callable[[], dt.date]
NowMs = Callable[[], int]


def _lapsing(m: Model, bindings: list[Binding], now_ms: int) -> bool:
    """Whether one of these bindings awaits consent past its 7 days: the sweep may have
    lapsed it already, or not yet (B14). Its people are then read again at the checkpoint."""
    late = [b for b in bindings if b.status == B_PENDING and now_ms >= b.created_ms + CONSENT_MS]
    for b in late:
        m.uncertain |= {b.binder, b.beneficiary}
    return bool(late)


class Create(Keyed):
    name, service, weight = "CreateBinding", "binding", 4

    def __init__(self, today: Today, now_ms: NowMs) -> None:
        self.today, self.now_ms = today, now_ms

    def judge(self, m: Model, op: Op, exact: bool) -> list[str]:
        live = m.live_bindings(op.request.binder_id)  # (the pair rule and the limit)
        return super().judge(m, op, exact and not _lapsing(m, live, self.now_ms()))

    def make(self, w: World) -> Op | None:
        pairs = w.people.wrong if not w.rng.randrange(12) else w.people.pairs
        pair = w.rng.choice(pairs)
        start, end = w.today, ""
        if not w.rng.randrange(6):
            start = w.today + dt.timedelta(days=w.rng.randint(1, 40))
        if not w.rng.randrange(5):
            end = (start + dt.timedelta(days=w.rng.randint(1, 90))).isoformat()
        request = pb.CreateBindingRequest(
            binder_id=pair.binder,
            beneficiary_id=pair.beneficiary,
            start_date=start.isoformat(),
            end_date=end,
            relationship=pair.relationship,  # type: ignore[arg-type]
            request_id=w.rid("b"),
        )
        request = self.reuse(w, request)
        op = Op(0, self, request, frozenset({request.binder_id, request.beneficiary_id}))
        if w.rng.randrange(3) == 0:
            op.caller = Caller("citizen", request.binder_id)
        return op

    def early(self, op: Op) -> str:
        r = op.request
        if r.start_date and r.end_date and r.end_date <= r.start_date:
            return "INVALID_DATE"
        return "SELF_BINDING" if r.binder_id == r.beneficiary_id else ""

    def predict(self, m: Model, op: Op) -> Any:
        r, today = op.request, self.today()
        start = r.start_date or today.isoformat()
        if not today.isoformat() <= start <= _a_year_after(today) or (
            r.end_date and r.end_date <= start
        ):
            return "INVALID_DATE"
        binder, beneficiary = m.account(r.binder_id), m.account(r.beneficiary_id)
        for refused, reason in (
            (binder is None, "ACCOUNT_NOT_FOUND"),
            (binder is not None and binder.type != EMPLOYEE, "BINDER_NOT_EMPLOYEE"),
            (binder is not None and binder.status == SUSPENDED, "ACCOUNT_SUSPENDED"),
            (binder is not None and binder.status != ACTIVE, "ACCOUNT_CLOSED"),
            (binder is not None and bool(binder.stop), "INSURANCE_STOPPED"),
            (beneficiary is None or beneficiary.closed, "BENEFICIARY_NOT_INSURED"),
        ):
            if refused:
                return reason
        assert binder is not None and beneficiary is not None
        return self._rules(m, op) or self._status(op)

    def _rules(self, m: Model, op: Op) -> str:
        r = op.request
        binder, beneficiary = m.accounts[r.binder_id], m.accounts[r.beneficiary_id]
        profile = m.policy.for_region(binder.region)
        name = RELATIONSHIPS.get(r.relationship, "")
        elder_first = _ELDER_FIRST.get(r.relationship)
        born = ids.birth_date(r.binder_id), ids.birth_date(r.beneficiary_id)
        live = m.live_bindings(r.binder_id)
        for refused, reason in (
            (not profile.allows(name), "RELATIONSHIP_NOT_ALLOWED"),
            (
                elder_first is not None
                and not (born[1] < born[0] if elder_first else born[0] < born[1]),
                "IMPLAUSIBLE_RELATIONSHIP",
            ),
            (
                profile.same_province and binder.region[:2] != beneficiary.region[:2],
                "CROSS_PROVINCE",
            ),
            (binder.balance <= 0, "ZERO_BALANCE"),
            (any(b.beneficiary == r.beneficiary_id for b in live), "BINDING_EXISTS"),
            (len(live) >= profile.max_bindings, "BINDING_LIMIT_REACHED"),
        ):
            if refused:
                return reason
        return ""

    def _status(self, op: Op) -> int:
        adult = age_on(op.request.beneficiary_id, self.today()) >= 18
        return B_PENDING if op.caller.role == "citizen" and adult else B_ACTIVE

    def effect(self, op: Op) -> Any:
        return op.answer.status

    def apply(self, m: Model, op: Op) -> None:
        m.bind(binding_of(op.answer))


def binding_of(b: pb.Binding, created_ms: int | None = None) -> Binding:
    """A binding as an answer or a read shows it (made at `created_ms` if given, else at the
    time it shows)."""
    shown = b.created_at.seconds * 1000 + b.created_at.nanos // 10**6
    made = shown if created_ms is None else created_ms
    return Binding(
        b.binding_id, b.binder_id, b.beneficiary_id, b.start_date, b.end_date, b.status, made
    )


def _a_year_after(day: dt.date) -> str:
    try:
        return day.replace(year=day.year + 1).isoformat()
    except ValueError:  # 29 February
        return day.replace(year=day.year + 1, day=28).isoformat()


def _pick(w: World, statuses: tuple[int, ...]) -> Binding | None:
    found = [b for _, b in sorted(w.model.bindings.items()) if b.status in statuses]
    return w.rng.choice(found) if found else None


class Remove(Keyed):
    name, service, weight = "RemoveBinding", "binding", 2

    def __init__(self, now_ms: NowMs) -> None:
        self.now_ms = now_ms

    def judge(self, m: Model, op: Op, exact: bool) -> list[str]:
        b = m.bindings.get(op.request.binding_id)
        late = b is not None and _lapsing(m, [b], self.now_ms())
        return super().judge(m, op, exact and not late)

    def make(self, w: World) -> Op | None:
        b = _pick(w, (B_ACTIVE, B_PENDING) if w.rng.randrange(6) else (REMOVED, LAPSED))
        if b is None:
            return None
        request = self.reuse(
            w, pb.RemoveBindingRequest(binding_id=b.binding_id, request_id=w.rid("u"))
        )
        b = w.model.bindings[request.binding_id]
        op = Op(0, self, request, frozenset({b.binder, b.beneficiary}))
        if w.rng.randrange(3) == 0:
            op.caller = Caller("citizen", w.rng.choice((b.binder, b.beneficiary)))
        return op

    def predict(self, m: Model, op: Op) -> Any:
        b = m.bindings.get(op.request.binding_id)
        if b is None:
            return "BINDING_NOT_FOUND"
        return REMOVED if b.status in (B_ACTIVE, B_PENDING) else b.status

    def effect(self, op: Op) -> Any:
        return op.answer.status

    def apply(self, m: Model, op: Op) -> None:
        _learn(m, op.answer)


class Confirm(Keyed):
    name, service, weight = "ConfirmBinding", "binding", 2

    def __init__(self, now_ms: Callable[[], int]) -> None:
        self.now_ms = now_ms

    def make(self, w: World) -> Op | None:
        b = _pick(w, (B_PENDING,) if w.rng.randrange(6) else (B_ACTIVE, REMOVED))
        if b is None:
            return None
        request = self.reuse(
            w, pb.ConfirmBindingRequest(binding_id=b.binding_id, request_id=w.rid("f"))
        )
        b = w.model.bindings[request.binding_id]
        op = Op(0, self, request, frozenset({b.binder, b.beneficiary}))
        if w.rng.randrange(2):
            op.caller = Caller("citizen", b.beneficiary)
        return op

    def predict(self, m: Model, op: Op) -> Any:
        b = m.bindings.get(op.request.binding_id)
        if b is None:
            return "BINDING_NOT_FOUND"
        if b.status != B_PENDING:
            return b.status
        return LAPSED if self.now_ms() >= b.created_ms + CONSENT_MS else B_ACTIVE

    def effect(self, op: Op) -> Any:
        return op.answer.status

    def apply(self, m: Model, op: Op) -> None:
        _learn(m, op.answer)


class Reorder(Keyed):
    name, service, weight = "SetPayerOrder", "binding", 2

    def make(self, w: World) -> Op | None:
        found = [p for p, o in sorted(w.model.orders.items()) if len(o) > 1]
        if not found:
            return None
        pid = w.rng.choice(found)
        binders = [b.binder for b in w.model.payers(pid)]
        w.rng.shuffle(binders)
        if not w.rng.randrange(8):
            binders = binders[:-1]  # not every binder: refused
        request = self.reuse(
            w,
            pb.SetPayerOrderRequest(beneficiary_id=pid, binder_ids=binders, request_id=w.rid("q")),
        )
        op = Op(0, self, request, frozenset({request.beneficiary_id, *request.binder_ids}))
        if w.rng.randrange(3) == 0:
            op.caller = Caller("citizen", request.beneficiary_id)
        return op

    def early(self, op: Op) -> str:
        binders = op.request.binder_ids
        return "" if binders and len(set(binders)) == len(binders) else "INVALID_ARGUMENT"

    def predict(self, m: Model, op: Op) -> Any:
        r = op.request
        active = {b.binder for b in m.payers(r.beneficiary_id)}
        if not active or active != set(r.binder_ids):
            return "INVALID_ARGUMENT"
        return list(r.binder_ids)

    def effect(self, op: Op) -> Any:
        return [p.binder_id for p in sorted(op.answer.payers, key=lambda p: p.priority)]

    def apply(self, m: Model, op: Op) -> None:
        pid = op.request.beneficiary_id
        by_binder = {b.binder: b.binding_id for b in m.payers(pid)}
        m.orders[pid] = [by_binder[p] for p in op.request.binder_ids if p in by_binder]


def _learn(m: Model, b: pb.Binding) -> None:
    known = m.bindings.get(b.binding_id)
    if known is not None:
        known.status = b.status
        if b.status != B_ACTIVE:
            m.unlist(b.binding_id)
        elif b.binding_id not in m.orders.get(b.beneficiary_id, []):
            m.orders.setdefault(b.beneficiary_id, []).append(b.binding_id)
