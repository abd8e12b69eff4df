"""The seeded mix of operations: every mutating RPC of the contract, weighted; the month-end
job at every month end; the background passes; and what a caller does about a call whose answer
it never got (retry it, reverse a bill whose outcome is unknown (S10), or give up)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from gongji.account.v1 import account_pb2 as apb
from services.sim import ops_accounts as acc
from services.sim import ops_bindings as bnd
from services.sim import ops_payments as pay
from services.sim import ops_premiums as prem
from services.sim import ops_quotas as quo
from services.sim.model import Q_ACTIVE
from services.sim.ops import Kind, Op, World

# The background passes that sweep a key per province (34 each).
WIDE = frozenset({"payer-orders", "binding-views", "consents-lapsed"})


class Workload:
    def __init__(
        self,
        w: World,
        today: Callable[[], dt.date],
        now_ms: Callable[[], int],
        jobs: list[str],
        services: dict[str, str],
    ) -> None:
        self.w = w
        self.reverse = pay.Reverse()
        self.month_end = prem.MonthEnd(today)
        self.settle, self.premium = pay.Settle(today), pay.Premium(today)
        self.credit = acc.Credit()
        self.change = quo.Change(now_ms)
        self.kinds: list[Kind] = [
            acc.Open(),
            self.credit,
            acc.Contribute(),
            acc.Status(True),
            acc.Status(False),
            acc.Purchase(today),
            acc.CancelPolicy(),
            acc.Stop(),
            acc.ChangeType(),
            acc.Withdraw(),
            acc.Transfer(),
            bnd.Create(today, now_ms),
            bnd.Remove(now_ms),
            bnd.Confirm(now_ms),
            bnd.Reorder(),
            self.settle,
            pay.Cancel(),
            self.reverse,
            self.premium,
            prem.AutoPay(),
            quo.Grant(now_ms, today),
            self.change,
            quo.End(now_ms),
            quo.Confirm(now_ms),
        ]
        self.passes = [prem.Pass(job, services[job]) for job in jobs]
        self.weights = [k.weight for k in self.kinds]

    def numbered(self, op: Op) -> Op:
        self.w.n += 1
        op.n = self.w.n
        return op

    def opening(self) -> list[Op]:
        """Everyone's account opened, and some money to start with."""
        ops = []
        for p in self.w.people.people:
            request = apb.OpenAccountRequest(
                person_id=p.pid,
                name="参保人",
                region_code=p.region,
                insurance_type=p.insurance,  # type: ignore[arg-type]
                request_id=f"open-{p.pid}",
            )
            ops.append(self.numbered(Op(0, self.kinds[0], request, frozenset({p.pid}))))
        return ops

    def new(self) -> Op:
        for _ in range(20):
            kind = self.w.rng.choices(self.kinds, self.weights)[0]
            op = kind.make(self.w)
            if op is not None:
                return self.numbered(op)
        return self.numbered(self.kinds[1].make(self.w) or self.opening()[0])

    def recovery(self) -> Op:
        kind = next(p for p in self.passes if p.name == "payments-recovered")
        return kind.make(self.w)  # type: ignore[return-value]

    def burst(self) -> list[Op]:
        """A family at once, on purpose: bills of a patient and of another relative his first
        payer (a funder of his quotas, or a binder) pays for, his premium paid from each payer
        (or himself) for one year, money coming in for a payer, and now and then a raise or a
        cut of one of his quotas, all in one round."""
        w = self.w
        with_payers = sorted(
            {p for p, o in w.model.orders.items() if o}
            | {q.relative for q in w.model.quotas.values() if q.status == Q_ACTIVE}
        )
        if not with_payers:
            return [self.new()]
        patient = w.rng.choice(with_payers)
        payers = [q.funder for q in w.model.quotas_of(patient) if q.status == Q_ACTIVE]
        payers += [b.binder for b in w.model.payers(patient)]
        relatives = sorted(
            {b.beneficiary for b in w.model.bindings.values() if b.binder == payers[0]}
            | {q.relative for q in w.model.funded(payers[0]) if q.status == Q_ACTIVE} - {patient}
        )
        ops = [self.settle.of(w, patient) for _ in range(w.rng.randint(1, 2))]
        if relatives:
            ops.append(self.settle.of(w, w.rng.choice(relatives)))
        year = w.today.year + w.rng.randrange(2)
        ops += [
            self.premium.of(w, p, patient, year, self._tight(payers, patient))
            for p in [*payers, patient][:3]
        ]
        ops.append(self.credit.of(w, w.rng.choice(payers)))
        quotas = [q for q in w.model.quotas_of(patient) if q.status == Q_ACTIVE]
        if quotas and w.rng.randrange(2):
            ops.append(self.change.of(w, w.rng.choice(quotas)))  # a raise or a cut racing them
        w.rng.shuffle(ops)
        return [self.numbered(op) for op in ops]

    def _tight(self, payers: list[str], patient: str) -> int:
        """A premium some of these accounts cannot pay in full and some can, when their
        balances allow (A2: one account pays all of it or nothing); else the province's."""
        have = sorted(a.balance for p in payers if (a := self.w.model.account(p)) is not None)
        if len(have) > 1 and 0 < have[0] < have[-1] and self.w.rng.randrange(2):
            return have[0] + 1
        return self.w.model.premium_of(patient)

    def background(self) -> Op:
        """A pass of a background loop; the sweeps over every province (34 keys each) less
        often than the others."""
        weights = [1 if p.name in WIDE else 4 for p in self.passes]
        kind = self.w.rng.choices(self.passes, weights)[0]
        return self.numbered(kind.make(self.w))  # type: ignore[arg-type]

    def month_ends(self, day: dt.date) -> list[Op]:
        """The month-end job of this year; in December (and now and then) next year's too;
        now and then the same run again at once."""
        years = [day.year]
        if day.month == 12 or not self.w.rng.randrange(4):
            years.append(day.year + 1)
        ops = [self.month_end.of(self.w, y, f"month-end-{day}-{y}") for y in years]
        if not self.w.rng.randrange(5):
            ops.append(self.month_end.of(self.w, day.year, f"month-end-{day}-{day.year}"))
        return [self.numbered(op) for op in ops]

    def unanswered(self, op: Op) -> Op | None:
        """What the caller does next about a call that got no answer: the same call again;
        for a bill, sometimes its reversal (S10) or nothing (the caller gave up); for a
        premium, sometimes nothing. None: given up, to be looked up at the next checkpoint."""
        roll = self.w.rng.randrange(10)
        if isinstance(op.kind, pay.Settle) and roll < 6:
            if roll < 3:
                r = op.request
                return self.numbered(
                    self.reverse.of(self.w, r.institution_id, r.medins_setl_id, r.patient_id)
                )
            return None
        if isinstance(op.kind, pay.Premium) and roll < 4:
            return None
        if isinstance(op.kind, prem.Pass):
            return None
        return self.numbered(op.kind.repeat(self.w, op))
