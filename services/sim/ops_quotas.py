"""The aid quotas' RPCs as the workload makes them (rules N1-N5, B14): quotas granted by the
counter or by the funder himself (then awaiting an adult relative's consent), raised, cut,
ended by either side and confirmed; each predicted through the model, which keeps what each
quota sets aside on its funder's account. Their draws are the settlements' and premiums'
(services.sim.ops_payments); their automatic ends (N4) follow the accounts' stops, withdrawals,
moves and changes of type (services.sim.ops_accounts)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from gongji.binding.v1 import binding_pb2 as pb
from gongji.common.v1 import common_pb2 as cpb
from services.binding.domain import age_on
from services.common import ids
from services.common.auth import Caller
from services.common.enums import QuotaEndReason
from services.sim.keyed import Keyed
from services.sim.model import (
    ACTIVE,
    CONSENT_MS,
    EMPLOYEE,
    Q_ACTIVE,
    Q_ENDED,
    Q_PENDING,
    SUSPENDED,
    Model,
    Quota,
)
from services.sim.ops import Op, World

BY_FUNDER, BY_RELATIVE = int(QuotaEndReason.BY_FUNDER), int(QuotaEndReason.BY_RELATIVE)
NOT_CONFIRMED = int(QuotaEndReason.NOT_CONFIRMED)
# A relative who must be born strictly before the funder (True) or after him (False): B8.
_ELDER: dict[int, bool] = {
    cpb.RELATIONSHIP_PARENT: True,
    cpb.RELATIONSHIP_GRANDPARENT: True,
    cpb.RELATIONSHIP_CHILD: False,
    cpb.RELATIONSHIP_GRANDCHILD: False,
}

Today = Callable[[], dt.date]
NowMs = Callable[[], int]


def quota_of(q: pb.Quota) -> Quota:
    created = q.created_at.seconds * 1000 + q.created_at.nanos // 10**6
    return Quota(
        q.quota_id, q.funder_id, q.relative_id, q.granted_fen, q.status, created, q.used_fen,
        q.end_reason,
    )  # fmt: skip


def _view(q: pb.Quota) -> tuple[int, int, int, int]:
    return (q.status, q.end_reason, q.granted_fen, q.used_fen)


def _pick(w: World, statuses: tuple[int, ...]) -> Quota | None:
    found = [q for _, q in sorted(w.model.quotas.items()) if q.status in statuses]
    return w.rng.choice(found) if found else None


class QuotaKind(Keyed):
    """A kind acting on one quota known to the run: it touches both sides; a quota awaiting
    consent past its 7 days may have been ended by the sweep meanwhile (then its answer is not
    predicted, and both sides are read again at the checkpoint)."""

    service = "binding"

    def __init__(self, now_ms: NowMs) -> None:
        self.now_ms = now_ms

    def on(self, w: World, q: Quota, request: Any) -> Op:
        request = self.reuse(w, request)
        known = w.model.quotas.get(request.quota_id, q)
        return Op(0, self, request, frozenset({known.funder, known.relative}))

    def overdue(self, m: Model, op: Op) -> bool:
        q = m.quotas.get(op.request.quota_id)
        late = (
            q is not None and q.status == Q_PENDING and self.now_ms() >= q.created_ms + CONSENT_MS
        )
        if late and q is not None:
            m.uncertain |= {q.funder, q.relative}
        return late

    def judge(self, m: Model, op: Op, exact: bool) -> list[str]:
        return super().judge(m, op, exact and not self.overdue(m, op))

    def effect(self, op: Op) -> Any:
        return _view(op.answer)

    def apply(self, m: Model, op: Op) -> None:
        found = quota_of(op.answer)
        known = m.quotas.get(found.qid)
        sure = op.alone and not op.touches & m.uncertain and found.qid not in m.loose_quotas
        if sure and known is not None and known.used != found.used:  # (else: a draw raced)
            m.broken.append(
                f"quota {found.qid} answered {found.used} fen used, the rules give {known.used}"
            )
        m.keep_quota(found)
        if {found.funder, found.relative} & m.uncertain:  # his quotas may end: the funder's money
            m.uncertain |= {found.funder, found.relative}


class Grant(QuotaKind):
    name, weight = "GrantQuota", 3

    def __init__(self, now_ms: NowMs, today: Today) -> None:
        super().__init__(now_ms)
        self.today = today

    def make(self, w: World) -> Op | None:
        pairs = w.people.wrong if not w.rng.randrange(12) else w.people.pairs + w.people.kin
        able = [p for p in pairs if _may_fund(w.model, p.binder)]
        pair = w.rng.choice(able if able and w.rng.randrange(5) else pairs)
        relationship = pair.relationship if w.rng.randrange(25) else 0
        funder = w.model.account(pair.binder)
        room = w.model.available(pair.binder) if funder is not None else 0
        roll = w.rng.randrange(10)
        if roll < 6 and room > 0:
            amount = w.rng.randint(1, max(1, room // 2))
        elif roll < 7:
            amount = room + 1
        else:
            amount = w.amount(30_000)
        request = pb.GrantQuotaRequest(
            funder_id=pair.binder,
            relative_id=pair.beneficiary,
            relationship=relationship,  # type: ignore[arg-type]
            amount_fen=amount,
            request_id=w.rid("g"),
        )
        op = self.made(w, request, "funder_id", "relative_id")
        if w.rng.randrange(3) == 0:
            op.caller = Caller("citizen", op.request.funder_id)
        return op

    def early(self, op: Op) -> str:
        r = op.request
        if not 0 < r.amount_fen <= 10**12:
            return "INVALID_AMOUNT"
        return "SELF_BINDING" if r.funder_id == r.relative_id else ""

    def overdue(self, m: Model, op: Op) -> bool:
        """Any quota of the funder awaiting consent past its days: its place (the pair, the
        limit) may have been freed by the sweep."""
        late = any(
            q.status == Q_PENDING and self.now_ms() >= q.created_ms + CONSENT_MS
            for q in m.funded(op.request.funder_id)
        )
        if late:
            m.uncertain |= {op.request.funder_id, op.request.relative_id}
        return late

    def predict(self, m: Model, op: Op) -> Any:
        r = op.request
        funder, relative = m.account(r.funder_id), m.account(r.relative_id)
        if funder is None:
            return "ACCOUNT_NOT_FOUND"
        live = [q for q in m.funded(r.funder_id) if q.status != Q_ENDED]
        for refused, reason in (
            (funder.type != EMPLOYEE, "BINDER_NOT_EMPLOYEE"),
            (funder.status == SUSPENDED, "ACCOUNT_SUSPENDED"),
            (funder.status != ACTIVE, "ACCOUNT_CLOSED"),
            (bool(funder.stop), "INSURANCE_STOPPED"),
            (relative is None or relative.closed, "BENEFICIARY_NOT_INSURED"),
            (r.relationship == 0, "RELATIONSHIP_NOT_ALLOWED"),
            (
                not _plausible(r.funder_id, r.relative_id, r.relationship),
                "IMPLAUSIBLE_RELATIONSHIP",
            ),
            (any(q.relative == r.relative_id for q in live), "QUOTA_EXISTS"),
            (len(live) >= m.policy.for_region(funder.region).max_quotas, "QUOTA_LIMIT_REACHED"),
            (r.amount_fen > m.available(r.funder_id), "INSUFFICIENT_FUNDS"),
        ):
            if refused:
                return reason
        adult = age_on(r.relative_id, self.today()) >= 18
        status = Q_PENDING if op.caller.role == "citizen" and adult else Q_ACTIVE
        return (status, 0, r.amount_fen, 0)


def _may_fund(m: Model, pid: str) -> bool:
    """An employee whose account may set money aside now (mostly, the workload grants from
    one: the refusals come from the rest)."""
    a = m.account(pid)
    return a is not None and a.type == EMPLOYEE and a.status == ACTIVE and not a.stop


def _plausible(funder: str, relative: str, relationship: int) -> bool:
    elder = _ELDER.get(relationship)
    if elder is None:
        return True
    born = ids.birth_date(funder), ids.birth_date(relative)
    return born[1] < born[0] if elder else born[0] < born[1]


class Change(QuotaKind):
    name, weight = "ChangeQuota", 2

    def make(self, w: World) -> Op | None:
        q = _pick(w, (Q_ACTIVE, Q_PENDING) if w.rng.randrange(8) else (Q_ENDED,))
        return None if q is None else self.of(w, q)

    def of(self, w: World, q: Quota) -> Op:
        """A new amount for this quota: a raise, a cut, below what is used, or hostile."""
        funder = w.model.account(q.funder)
        room = w.model.available(q.funder) if funder is not None else 0
        roll = w.rng.randrange(10)
        if roll < 4:
            amount = q.granted + w.rng.randint(1, max(1, room))  # a raise, maybe too much
        elif roll < 7:
            amount = w.rng.randint(q.used, max(q.used, q.granted))  # a cut, maybe to what's used
        elif roll < 8:
            amount = q.used - 1  # below what is used (or -1)
        else:
            amount = w.rng.choice((0, 10**12, 10**12 + 1))
        request = pb.ChangeQuotaRequest(quota_id=q.qid, amount_fen=amount, request_id=w.rid("h"))
        op = self.on(w, q, request)
        if w.rng.randrange(3) == 0:
            op.caller = Caller("citizen", w.model.quotas.get(op.request.quota_id, q).funder)
        return op

    def early(self, op: Op) -> str:
        return "" if 0 <= op.request.amount_fen <= 10**12 else "INVALID_AMOUNT"

    def predict(self, m: Model, op: Op) -> Any:
        q, amount = m.quotas.get(op.request.quota_id), op.request.amount_fen
        if q is None:
            return "QUOTA_NOT_FOUND"
        if q.status == Q_ENDED:
            return "QUOTA_ENDED"
        if amount < q.used:
            return "QUOTA_BELOW_USED"
        if amount > q.granted:
            if m.held(q.funder).status == SUSPENDED:
                return "ACCOUNT_SUSPENDED"
            room = amount - q.granted if q.status == Q_ACTIVE else amount - q.used
            if room > m.available(q.funder):
                return "INSUFFICIENT_FUNDS"
        return (q.status, 0, amount, q.used)


class End(QuotaKind):
    name, weight = "EndQuota", 1

    def make(self, w: World) -> Op | None:
        q = _pick(w, (Q_ACTIVE, Q_PENDING) if w.rng.randrange(6) else (Q_ENDED,))
        if q is None:
            return None
        op = self.on(w, q, pb.EndQuotaRequest(quota_id=q.qid, request_id=w.rid("e")))
        q = w.model.quotas.get(op.request.quota_id, q)
        roll = w.rng.randrange(6)
        if roll < 2:
            op.caller = Caller("citizen", q.funder)
        elif roll < 3:
            op.caller = Caller("citizen", q.relative)
        return op

    def predict(self, m: Model, op: Op) -> Any:
        q = m.quotas.get(op.request.quota_id)
        if q is None:
            return "QUOTA_NOT_FOUND"
        if q.status == Q_ENDED:
            return (Q_ENDED, q.reason, q.granted, q.used)
        by_relative = op.caller.role == "citizen" and op.caller.sub == q.relative
        return (Q_ENDED, BY_RELATIVE if by_relative else BY_FUNDER, q.granted, q.used)


class Confirm(QuotaKind):
    name, weight = "ConfirmQuota", 2

    def make(self, w: World) -> Op | None:
        q = _pick(w, (Q_PENDING,) if w.rng.randrange(6) else (Q_ACTIVE, Q_ENDED))
        if q is None:
            return None
        op = self.on(w, q, pb.ConfirmQuotaRequest(quota_id=q.qid, request_id=w.rid("n")))
        if w.rng.randrange(2):
            op.caller = Caller("citizen", w.model.quotas.get(op.request.quota_id, q).relative)
        return op

    def judge(self, m: Model, op: Op, exact: bool) -> list[str]:
        # a confirmation past the 7 days ends the quota itself: predicted exactly
        return Keyed.judge(self, m, op, exact)

    def predict(self, m: Model, op: Op) -> Any:
        q = m.quotas.get(op.request.quota_id)
        if q is None:
            return "QUOTA_NOT_FOUND"
        if q.status != Q_PENDING:
            return (q.status, q.reason, q.granted, q.used)
        if self.now_ms() >= q.created_ms + CONSENT_MS:
            return (Q_ENDED, NOT_CONFIRMED, q.granted, q.used)
        if m.held(q.funder).status == SUSPENDED:
            return "ACCOUNT_SUSPENDED"
        if q.remaining > m.available(q.funder):
            return "INSUFFICIENT_FUNDS"
        return (Q_ACTIVE, 0, q.granted, q.used)
