"""Automatic premium deduction (A2, 医保部门每月底自动划扣): auto-pays set and changed, and the
month-end job, run at every month end of the simulated calendar (again, and for next year, now
and then); and the background passes the services run on timers, here run as steps."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from gongji.settlement.v1 import settlement_pb2 as pb
from services.sim import rules
from services.sim.keyed import Keyed
from services.sim.model import RESIDENT, Model
from services.sim.ops import Kind, Op, World

Today = Callable[[], dt.date]
AUTOPAYS = "autopays"  # what every auto-pay change and every month-end run touch


class AutoPay(Keyed):
    name, service, weight = "SetPremiumAutoPay", "settlement", 2

    def make(self, w: World) -> Op | None:
        residents = [p for p, a in sorted(w.model.accounts.items()) if a.type == RESIDENT]
        if not residents:
            return None
        beneficiary = w.rng.choice(residents)
        payers = [b.binder for b in w.model.payers(beneficiary)] or [beneficiary]
        payer = w.rng.choice(payers) if w.rng.randrange(6) else w.anyone()
        request = pb.SetPremiumAutoPayRequest(
            beneficiary_id=beneficiary,
            payer_id=payer,
            enabled=w.rng.randrange(5) > 0,
            request_id=w.rid("a"),
        )
        op = self.made(w, request, "beneficiary_id", "payer_id")
        op.touches |= {AUTOPAYS}
        return op

    def predict(self, m: Model, op: Op) -> Any:
        return "OK"  # who may pay is judged by a quote: the job's answers are what is checked

    def judge(self, m: Model, op: Op, exact: bool) -> list[str]:
        return super().judge(m, op, exact=False)

    def apply(self, m: Model, op: Op) -> None:
        r = op.request
        m.autopays[r.beneficiary_id] = (r.payer_id, r.enabled)


class MonthEnd(Keyed):
    """RunPremiumDeductions: keyed by its run_id."""

    name, service, weight = "RunPremiumDeductions", "settlement", 0

    def __init__(self, today: Today) -> None:
        self.today = today

    def key(self, op: Op) -> str:
        return f"{self.name}:{op.request.run_id}"

    def make(self, w: World) -> Op | None:
        return self.of(w, w.today.year, f"month-end-{w.today}-{w.today.year}")

    def of(self, w: World, year: int, run_id: str) -> Op:
        parties = {AUTOPAYS, *(p for b, (payer, _) in w.model.autopays.items() for p in (b, payer))}
        request = pb.RunPremiumDeductionsRequest(year=year, run_id=run_id)
        return Op(0, self, request, frozenset(parties), note={"key": f"{run_id} {year}"})

    def predict(self, m: Model, op: Op) -> Any:
        outcomes = rules.month_end(m, op.request.year, self.today().isoformat())
        skipped = {b: why for b, why in outcomes.items() if why != "paid"}
        return (len(outcomes) - len(skipped), skipped)

    def effect(self, op: Op) -> Any:
        r = op.answer
        return (r.paid + r.already_paid, {s.beneficiary_id: s.reason for s in r.skipped})

    def judge(self, m: Model, op: Op, exact: bool) -> list[str]:
        today = self.today()
        if op.reason == "INVALID_ARGUMENT" and op.request.year not in (today.year, today.year + 1):
            return []  # a run taken up again in a new year, for a year now past
        if op.reason:
            return [
                f"the month-end job failed: {op.reason} (a payment it cannot make is listed "
                "as skipped, one made before is counted as paid: it never fails)"
            ]
        return super().judge(m, op, exact)

    def apply(self, m: Model, op: Op) -> None:
        for p in op.answer.payments:
            m.premium(p.payment_id, p.payer_id, p.beneficiary_id, p.year, p.amount_fen)

    def probes(self, m: Model, op: Op) -> list[str]:
        """The payment ids a run may have paid without listing them (an earlier cut-off run
        of its id): read after the round."""
        return [rules.autopay_id(b, op.request.year) for b in sorted(m.autopays)]


class Pass(Kind):
    """One pass of a background loop (services.sim.stack jobs): it answers nothing to judge."""

    service, weight = "", 0

    def __init__(self, job: str, service: str) -> None:
        self.name, self.service = job, service

    def make(self, w: World) -> Op | None:
        return Op(0, self, pb.RunPremiumDeductionsRequest(), frozenset(), note={"key": ""})

    def judge(self, m: Model, op: Op, exact: bool) -> list[str]:
        return []
