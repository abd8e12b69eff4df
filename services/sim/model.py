"""A pure model of what the rules say the books should hold: every account's balance, status,
stop and type, this year's commercial purchases, the bindings and each beneficiary's payer
order, the settlements and the premiums paid. The run applies to it every answer the services
gave (services.sim.ops), in the order they were given; services.sim.rules predicts from it. No
I/O, no services code beyond the enums and the policy.

Money is never copied from the services into the model: a balance moves here only by the effect
the rules give an accepted operation, and the run compares the two. Relationships (a binding's
status, a payer order) may change by themselves (a lapse, a consent that expired, a sweep that
finished a binding cut off half-way): for a person the run knows such a change may be pending
for, the model reads them again at a checkpoint (`resync`), and predicts nothing exact for him
until then.
"""

from __future__ import annotations

import dataclasses

from services.common.enums import (
    AccountStatus,
    BindingStatus,
    InsuranceType,
    PremiumKind,
    QuotaEndReason,
    QuotaStatus,
)
from services.common.policy import Policy

ACTIVE, SUSPENDED = int(AccountStatus.ACTIVE), int(AccountStatus.SUSPENDED)
CLOSED, MOVED_OUT = int(AccountStatus.CLOSED), int(AccountStatus.TRANSFERRED_OUT)
EMPLOYEE, RESIDENT = int(InsuranceType.EMPLOYEE), int(InsuranceType.RESIDENT)
B_ACTIVE, B_PENDING = int(BindingStatus.ACTIVE), int(BindingStatus.PENDING_CONSENT)
Q_ACTIVE, Q_PENDING = int(QuotaStatus.ACTIVE), int(QuotaStatus.PENDING_CONSENT)
Q_ENDED = int(QuotaStatus.ENDED)
MEDICAL, LTC = int(PremiumKind.RESIDENT_MEDICAL), int(PremiumKind.LONG_TERM_CARE)
CONSENT_MS = 7 * 24 * 3600 * 1000  # B14: a quota or binding awaiting consent lapses after it
Leg = tuple[str, int, str]  # (payer, fen, the aid quota it was drawn from or '')


@dataclasses.dataclass
class Policy_:
    amount: int
    year: int
    active: bool = True


@dataclasses.dataclass
class Account:
    pid: str
    type: int
    region: str
    status: int = ACTIVE
    stop: int = 0
    kept: bool = False  # a resident's account kept from his employee years (A9)
    balance: int = 0
    policies: dict[str, Policy_] = dataclasses.field(default_factory=dict)
    months: dict[str, tuple[int, int, int, int, str]] = dataclasses.field(default_factory=dict)

    @property
    def closed(self) -> bool:
        return self.status in (CLOSED, MOVED_OUT)

    @property
    def personal(self) -> bool:
        return self.type == EMPLOYEE or self.kept

    def why_not_pay(self) -> str:
        """Why money may not leave this account now (S4, A6, A9), or ''."""
        if not self.personal:
            return "NO_PERSONAL_ACCOUNT"
        if self.closed:
            return "ACCOUNT_CLOSED"
        if self.status == SUSPENDED:
            return "ACCOUNT_SUSPENDED"
        return "INSURANCE_STOPPED" if self.stop else ""

    def spent(self, year: int) -> int:
        return sum(p.amount for p in self.policies.values() if p.active and p.year == year)


@dataclasses.dataclass
class Binding:
    binding_id: str
    binder: str
    beneficiary: str
    start: str
    end: str
    status: int
    created_ms: int = 0

    def valid_on(self, day: str) -> bool:
        return self.status == B_ACTIVE and self.start <= day and (not self.end or day <= self.end)


@dataclasses.dataclass
class Quota:
    """An aid quota (N1-N5): set aside on its funder's account for one relative."""

    qid: str
    funder: str
    relative: str
    granted: int
    status: int
    created_ms: int
    used: int = 0
    reason: int = 0  # QuotaEndReason once ENDED

    @property
    def remaining(self) -> int:
        return self.granted - self.used


@dataclasses.dataclass
class Settlement:
    sid: str
    patient: str
    content: tuple[object, ...]  # what makes a repeat of its key the same bill (S8)
    legs: list[Leg]  # in the order drawn
    cancelled: bool = False
    cancel_rid: str = ""


@dataclasses.dataclass
class Model:
    policy: Policy
    accounts: dict[str, Account] = dataclasses.field(default_factory=dict)
    bindings: dict[str, Binding] = dataclasses.field(default_factory=dict)
    orders: dict[str, list[str]] = dataclasses.field(default_factory=dict)  # binding ids
    settlements: dict[str, Settlement] = dataclasses.field(default_factory=dict)
    reversed: set[str] = dataclasses.field(default_factory=set)  # tombstoned keys (S10)
    # payer, beneficiary, year, fen, kind, quota
    premiums: dict[str, tuple[str, str, int, int, int, str]] = dataclasses.field(
        default_factory=dict
    )
    years: dict[tuple[str, int, int], str] = dataclasses.field(default_factory=dict)
    quotas: dict[str, Quota] = dataclasses.field(default_factory=dict)
    granted: dict[str, list[str]] = dataclasses.field(default_factory=dict)  # grant order
    autopays: dict[str, tuple[str, bool]] = dataclasses.field(default_factory=dict)
    uncertain: set[str] = dataclasses.field(default_factory=set)
    # whose account closed or re-opened while a refund to it may have raced that: a refund to
    # a closed account is paid on (S9), so its money follows the order; read from the books
    loose: set[str] = dataclasses.field(default_factory=set)
    loose_quotas: set[str] = dataclasses.field(default_factory=set)  # used: read from the books
    done: dict[str, tuple[bytes, object]] = dataclasses.field(default_factory=dict)  # by key
    broken: list[str] = dataclasses.field(default_factory=list)  # what the model found wrong

    # -- reading -------------------------------------------------------------------------
    def account(self, pid: str) -> Account | None:
        return self.accounts.get(pid)

    def payers(self, beneficiary: str) -> list[Binding]:
        return [self.bindings[b] for b in self.orders.get(beneficiary, [])]

    def live_bindings(self, binder: str) -> list[Binding]:
        return [
            b
            for b in self.bindings.values()
            if b.binder == binder and b.status in (B_ACTIVE, B_PENDING)
        ]

    def quotas_of(self, relative: str) -> list[Quota]:
        """The quotas granted to him, oldest first (grant order, N3)."""
        return [self.quotas[q] for q in self.granted.get(relative, [])]

    def funded(self, funder: str) -> list[Quota]:
        return [q for _, q in sorted(self.quotas.items()) if q.funder == funder]

    def reserved(self, funder: str) -> int:
        """What remains of his ACTIVE quotas (N2): his, but not his to spend."""
        return sum(q.remaining for q in self.funded(funder) if q.status == Q_ACTIVE)

    def available(self, pid: str) -> int:
        return self.accounts[pid].balance - self.reserved(pid)

    def premium_of(self, beneficiary: str) -> int:
        a = self.accounts.get(beneficiary)
        return self.policy.for_region(a.region if a else "00").resident_premium_fen

    def held(self, pid: str) -> Account:
        """The account an accepted operation acted on; one whose opening the model has not
        learned yet (its answer still unknown) is taken from the books at the checkpoint."""
        a = self.accounts.get(pid)
        if a is None:
            a = self.accounts[pid] = Account(pid, EMPLOYEE, "")
            self.loose.add(pid)
            self.uncertain.add(pid)
        return a

    # -- money ---------------------------------------------------------------------------
    def move(self, pid: str, fen: int, why: str) -> None:
        self.held(pid).balance += fen

    def closing(self, pid: str, raced: bool) -> None:
        """The account closed or re-opened; `raced`: by an operation that raced another on it,
        or while one of its operations had no answer yet."""
        if raced or pid in self.uncertain:
            self.loose.add(pid)

    def closed_empty(self, pids: set[str]) -> None:
        """An account closed or moved out holds nothing (A4, A5; a refund to it is paid on,
        S9): what came in before its closure in a round left with it, whatever the order the
        model applied them in."""
        for pid in pids:
            a = self.accounts.get(pid)
            if a is not None and a.closed:
                a.balance = 0

    def overdrawn(self, pids: frozenset[str] | set[str]) -> list[str]:
        """Balances below zero once a round's answers are all applied (within a round the
        order of their effects is not known)."""
        return [
            f"{pid} overdrawn: the rules give {self.accounts[pid].balance} fen"
            for pid in sorted(pids)
            if pid in self.accounts and self.accounts[pid].balance < 0
        ]

    def refund(self, pid: str, fen: int, why: str) -> None:
        """A refund to an account that closed since is written and paid on (S9): net nothing."""
        a = self.accounts[pid]
        if not a.closed:
            self.move(pid, fen, why)

    def settle(self, s: Settlement) -> None:
        known = self.settlements.get(s.sid)
        if known is not None:
            if known.legs != s.legs:
                self.broken.append(
                    f"settlement {s.sid} answered legs {s.legs}, before {known.legs}"
                )
            return
        self.settlements[s.sid] = s
        for payer, fen, quota in s.legs:
            self.move(payer, -fen, f"settlement {s.sid}")
            self.draw(payer, quota, fen)

    def cancel(self, sid: str, rid: str, raced: bool = False) -> None:
        """`raced`: by an operation on its payers whose order against it is unknown (an end of
        a quota decides where its leg goes back to)."""
        s = self.settlements[sid]
        if s.cancelled:
            return
        s.cancelled, s.cancel_rid = True, rid
        for payer, fen, quota in s.legs:
            self.refund(payer, fen, f"cancel of {sid}")
            q = self.quotas.get(quota)
            if q is not None and q.status == Q_ACTIVE:  # back to its quota while ACTIVE (N3)
                q.used -= fen
            if q is not None and (raced or {q.funder, q.relative} & self.uncertain):
                self.loose_quotas.add(quota)  # it may have ended first (N4): read its use

    def draw(self, funder: str, quota: str, fen: int) -> None:
        """A draw on a quota (N3, N5); one the model does not know is read at the checkpoint."""
        q = self.quotas.get(quota)
        if q is not None:
            q.used += fen
        elif quota:  # its grant's answer is not known yet: its use is read from the books
            self.uncertain.add(funder)
            self.loose_quotas.add(quota)

    def premium(
        self, payment_id: str, payer: str, beneficiary: str, year: int, fen: int,
        kind: int = MEDICAL, quota: str = "",
    ) -> None:  # fmt: skip
        if payment_id in self.premiums:
            return
        paid_by = self.years.get((beneficiary, kind, year))
        if paid_by is not None and paid_by != payment_id:
            self.broken.append(
                f"the premium of {beneficiary} ({kind}) for {year} paid twice: {paid_by} and "
                f"{payment_id}"
            )
        self.years[beneficiary, kind, year] = payment_id
        self.premiums[payment_id] = (payer, beneficiary, year, fen, kind, quota)
        self.move(payer, -fen, f"premium {payment_id}")
        self.draw(payer, quota, fen)

    # -- quotas ----------------------------------------------------------------------------
    def keep_quota(self, q: Quota) -> None:
        """A quota as an answer or a read shows it (its money moves only by `draw`)."""
        known = self.quotas.get(q.qid)
        if known is None:
            self.quotas[q.qid] = q
            order = self.granted.setdefault(q.relative, [])
            if q.qid not in order:
                order.append(q.qid)
            return
        known.granted, known.status, known.reason = q.granted, q.status, q.reason

    def end_funded(self, funder: str, reason: QuotaEndReason) -> None:
        """His stop, withdrawal, move or change to resident ended his quotas in the same step
        (N4); the relatives' sides follow later."""
        for q in self.funded(funder):
            if q.status != Q_ENDED:
                q.status, q.reason = Q_ENDED, int(reason)
                self.uncertain.add(q.relative)

    def lapsed(self, now_ms: int) -> None:
        """At rest, every quota awaiting consent past its 7 days has ended NOT_CONFIRMED (B14:
        the consent sweep ran until nothing was due)."""
        for q in self.quotas.values():
            if q.status == Q_PENDING and now_ms >= q.created_ms + CONSENT_MS:
                q.status, q.reason = Q_ENDED, int(QuotaEndReason.NOT_CONFIRMED)

    def relative_changed(self, relative: str) -> None:
        """His stop, withdrawal or move ends the quotas granted to him within a second (N4),
        by the event stream: their funders' money is not known for sure until read again."""
        self.uncertain |= {q.funder for q in self.quotas_of(relative) if q.status != Q_ENDED}

    # -- relationships -------------------------------------------------------------------
    def bind(self, b: Binding) -> None:
        known = self.bindings.get(b.binding_id)
        self.bindings[b.binding_id] = b
        if b.status == B_ACTIVE and (known is None or known.status != B_ACTIVE):
            order = self.orders.setdefault(b.beneficiary, [])
            if b.binding_id not in order:
                order.append(b.binding_id)
        elif b.status != B_ACTIVE:
            self.unlist(b.binding_id)

    def unlist(self, binding_id: str) -> None:
        b = self.bindings.get(binding_id)
        if b is not None and binding_id in self.orders.get(b.beneficiary, []):
            self.orders[b.beneficiary].remove(binding_id)
