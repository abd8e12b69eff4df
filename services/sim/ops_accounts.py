"""The account service's mutating RPCs as the workload makes them (rules A1, A3-A9): opening,
credits, contributions, suspension, commercial insurance, stops, type changes, withdrawals and
moves; each predicted and applied through the model."""

from __future__ import annotations

import datetime as dt
from typing import Any

from gongji.account.v1 import account_pb2 as pb
from services.common.enums import STOP_FOR_WITHDRAWAL, QuotaEndReason, WithdrawalReason
from services.common.ids import province
from services.sim.keyed import Keyed
from services.sim.model import (
    ACTIVE,
    CLOSED,
    EMPLOYEE,
    MOVED_OUT,
    RESIDENT,
    SUSPENDED,
    Account,
    Model,
    Policy_,
)
from services.sim.ops import Op, World
from services.sim.population import REGIONS
from services.sim.rules import commercial

MAX_BALANCE = 10**15
INSURERS = ("PICC-HN", "PICC-HN", "CPIC-HN", "NOBODY-XX")  # the last is no partner


def _account(m: Model, op: Op) -> Account | None:
    return m.account(op.request.person_id)


def _view(answer: pb.Account) -> tuple[int, int, int, str, int]:
    return (
        answer.status,
        answer.insurance_type,
        answer.stopped_reason,
        answer.region_code,
        answer.balance_fen,
    )


class Open(Keyed):
    name, service, weight = "OpenAccount", "account", 1

    def make(self, w: World) -> Op | None:
        closed = [p for p, a in sorted(w.model.accounts.items()) if a.closed]
        pid = w.rng.choice(closed) if closed and w.rng.randrange(3) else w.anyone()
        person = w.people.person(pid)
        region = person.region if pid not in w.model.accounts else w.model.accounts[pid].region
        request = pb.OpenAccountRequest(
            person_id=pid,
            name="参保人",
            region_code=region,
            insurance_type=person.insurance,  # type: ignore[arg-type]
            request_id=w.rid("o"),
        )
        return self.made(w, request, "person_id")

    def predict(self, m: Model, op: Op) -> Any:
        a = _account(m, op)
        if a is not None and not a.closed:
            return "ACCOUNT_EXISTS"
        r = op.request
        return (ACTIVE, r.insurance_type, 0, r.region_code, a.balance if a else 0)

    def effect(self, op: Op) -> Any:
        return _view(op.answer)

    def apply(self, m: Model, op: Op) -> None:
        r, a = op.request, _account(m, op)
        if a is None:
            m.accounts[r.person_id] = Account(r.person_id, r.insurance_type, r.region_code)
            return
        a.type, a.region, a.status, a.stop, a.kept = (
            r.insurance_type,
            r.region_code,
            ACTIVE,
            0,
            False,
        )
        m.closing(a.pid, not op.alone)
        m.uncertain.add(a.pid)  # his grants went with the closure; his bindings may lapse late


class Credit(Keyed):
    name, service, weight = "Credit", "account", 8

    def make(self, w: World) -> Op | None:
        pid = w.opened() if w.rng.randrange(10) else w.anyone()
        return None if pid is None else self.of(w, pid)

    def of(self, w: World, pid: str) -> Op:
        request = pb.CreditRequest(
            person_id=pid,
            amount_fen=w.amount(60_000),
            memo="划入",
            kind=w.rng.choice((1, 1, 2)),  # type: ignore[arg-type]
            request_id=w.rid("c"),
        )
        return self.made(w, request, "person_id")

    def early(self, op: Op) -> str:
        return "" if 0 < op.request.amount_fen <= 10**12 else "INVALID_AMOUNT"

    def predict(self, m: Model, op: Op) -> Any:
        a, amount = _account(m, op), op.request.amount_fen
        if a is None:
            return "ACCOUNT_NOT_FOUND"
        if not a.personal:
            return "NO_PERSONAL_ACCOUNT"
        if a.closed:
            return "ACCOUNT_CLOSED"
        return "INVALID_AMOUNT" if a.balance + amount > MAX_BALANCE else amount

    def effect(self, op: Op) -> Any:
        return op.answer.amount_fen

    def apply(self, m: Model, op: Op) -> None:
        m.move(op.request.person_id, op.answer.amount_fen, f"credit {op.request.request_id}")


class Contribute(Keyed):
    name, service, weight = "RecordContribution", "account", 4

    def make(self, w: World) -> Op | None:
        pid = w.opened(personal=True)
        if pid is None:
            return None
        back = w.rng.randrange(36) if w.rng.randrange(4) else 0
        first = dt.date(w.today.year, w.today.month, 1)
        month = (first - dt.timedelta(days=31 * back)).strftime("%Y-%m")
        base = w.rng.choice((800_000, 650_000, 1_234_567, 1, 10**12))
        request = pb.RecordContributionRequest(
            person_id=pid,
            month=month,
            base_fen=base,
            employee_fen=base // 50,
            employer_fen=base * 3 // 50,
            payer=1,  # type: ignore[arg-type]
            request_id=w.rid("m"),
        )
        return self.made(w, request, "person_id")

    def early(self, op: Op) -> str:
        r = op.request
        valid = 0 < r.base_fen <= 10**12 and r.employee_fen + r.employer_fen > 0
        return "" if valid else "INVALID_AMOUNT"

    def predict(self, m: Model, op: Op) -> Any:
        r, a = op.request, _account(m, op)
        if a is None:
            return "ACCOUNT_NOT_FOUND"
        record = (r.base_fen, r.employee_fen, r.employer_fen, r.payer, r.region_code or a.region)
        if r.month in a.months:
            return (
                self._allocation(m, a, a.months[r.month])
                if a.months[r.month] == record
                else ("CONTRIBUTION_EXISTS")
            )
        for refused, reason in (
            (a.type != EMPLOYEE, "NOT_EMPLOYEE"),
            (a.closed, "ACCOUNT_CLOSED"),
            (bool(a.stop), "INSURANCE_STOPPED"),
        ):
            if refused:
                return reason
        allocation = self._allocation(m, a, record)
        return "INVALID_AMOUNT" if a.balance + allocation > MAX_BALANCE else allocation

    @staticmethod
    def _allocation(m: Model, a: Account, record: tuple[int, int, int, int, str]) -> int:
        return m.policy.for_region(a.region).allocation(record[0])

    def effect(self, op: Op) -> Any:
        return op.answer.allocation_fen

    def apply(self, m: Model, op: Op) -> None:
        r, a = op.request, m.held(op.request.person_id)
        if r.month in a.months:
            return  # the month recorded before: its record again, nothing credited
        a.months[r.month] = (
            r.base_fen,
            r.employee_fen,
            r.employer_fen,
            r.payer,
            op.answer.region_code,
        )
        m.move(a.pid, op.answer.allocation_fen, f"contribution {r.month}")


class Status(Keyed):
    """SuspendAccount and ResumeAccount (A6)."""

    service, weight = "account", 2

    def __init__(self, suspend: bool) -> None:
        self.name = "SuspendAccount" if suspend else "ResumeAccount"
        self.suspend = suspend

    def make(self, w: World) -> Op | None:
        pid = w.opened() if w.rng.randrange(8) else w.anyone()
        if pid is None:
            return None
        if self.suspend:
            request: Any = pb.SuspendAccountRequest(
                person_id=pid, reason="骗保", request_id=w.rid("s")
            )
        else:
            request = pb.ResumeAccountRequest(person_id=pid, request_id=w.rid("r"))
        return self.made(w, request, "person_id")

    def predict(self, m: Model, op: Op) -> Any:
        a = _account(m, op)
        if a is None:
            return "ACCOUNT_NOT_FOUND"
        if a.closed:
            return "ACCOUNT_CLOSED"
        status = SUSPENDED if self.suspend else ACTIVE
        return (status, a.type, a.stop, a.region, a.balance)

    def effect(self, op: Op) -> Any:
        return _view(op.answer)

    def apply(self, m: Model, op: Op) -> None:
        a = m.held(op.request.person_id)
        a.status = SUSPENDED if self.suspend else ACTIVE


class Purchase(Keyed):
    name, service, weight = "PurchaseCommercialInsurance", "account", 3

    def __init__(self, today: Any) -> None:
        self.today = today  # the run's Beijing date, read when judged

    def make(self, w: World) -> Op | None:
        pid = w.opened(personal=True)
        if pid is None:
            return None
        a = w.model.accounts[pid]
        usual = max(1, (a.balance * 2) // 5 - a.spent(w.today.year))
        amount = w.rng.choice((usual, usual + 1, max(1, usual // 3), w.amount(usual)))
        taken = sorted(a.policies)
        policy_no = w.rng.choice(taken) if taken and not w.rng.randrange(10) else w.rid("PN")
        request = pb.PurchaseCommercialInsuranceRequest(
            person_id=pid,
            amount_fen=amount,
            insurer_code=w.rng.choice(INSURERS),
            policy_no=policy_no,
            request_id=w.rid("p"),
            kind=w.rng.choice((0, 1, 2)),  # type: ignore[arg-type]
        )
        return self.made(w, request, "person_id")

    def early(self, op: Op) -> str:
        return "" if 0 < op.request.amount_fen <= 10**12 else "INVALID_AMOUNT"

    def predict(self, m: Model, op: Op) -> Any:
        r = op.request
        partner = r.insurer_code != "NOBODY-XX"
        found = commercial(m, r.person_id, r.amount_fen, partner, r.policy_no, self.today().year)
        return found if isinstance(found, str) else -found

    def effect(self, op: Op) -> Any:
        return op.answer.amount_fen

    def apply(self, m: Model, op: Op) -> None:
        r, a = op.request, m.held(op.request.person_id)
        a.policies[r.policy_no] = Policy_(r.amount_fen, self.today().year)
        m.move(a.pid, -r.amount_fen, f"purchase {r.policy_no}")


class CancelPolicy(Keyed):
    name, service, weight = "CancelCommercialInsurance", "account", 2

    def make(self, w: World) -> Op | None:
        held = [(p, n) for p, a in sorted(w.model.accounts.items()) for n in sorted(a.policies)]
        if not held:
            return None
        pid, policy_no = w.rng.choice(held)
        request = pb.CancelCommercialInsuranceRequest(
            person_id=pid, policy_no=policy_no, request_id=w.rid("x")
        )
        return self.made(w, request, "person_id")

    def predict(self, m: Model, op: Op) -> Any:
        a = _account(m, op)
        if a is None:
            return "ACCOUNT_NOT_FOUND"
        p = a.policies.get(op.request.policy_no)
        if p is None:
            return "POLICY_NOT_FOUND"
        return p.amount if p.active else "ALREADY_CANCELLED"

    def effect(self, op: Op) -> Any:
        return op.answer.amount_fen

    def apply(self, m: Model, op: Op) -> None:
        a = m.held(op.request.person_id)
        p = a.policies[op.request.policy_no]
        p.active = False
        m.refund(a.pid, p.amount, f"policy {op.request.policy_no} cancelled")


class Stop(Keyed):
    name, service, weight = "StopInsurance", "account", 1

    def make(self, w: World) -> Op | None:
        pid = w.opened()
        if pid is None:
            return None
        request = pb.StopInsuranceRequest(
            person_id=pid,
            reason=w.rng.choice((1, 2, 3, 3)),  # type: ignore[arg-type]
            request_id=w.rid("t"),
        )
        return self.made(w, request, "person_id")

    def predict(self, m: Model, op: Op) -> Any:
        a, reason = _account(m, op), op.request.reason
        if a is None:
            return "ACCOUNT_NOT_FOUND"
        if a.stop != reason:
            for refused, why in (
                (a.closed, "ACCOUNT_CLOSED"),
                (not a.personal, "NO_PERSONAL_ACCOUNT"),
                (bool(a.stop), "INSURANCE_STOPPED"),
            ):
                if refused:
                    return why
        return (a.status, a.type, reason, a.region, a.balance)

    def effect(self, op: Op) -> Any:
        return _view(op.answer)

    def apply(self, m: Model, op: Op) -> None:
        a = m.held(op.request.person_id)
        a.stop = op.request.reason
        m.end_funded(a.pid, QuotaEndReason.INSURANCE_ENDED)
        m.relative_changed(a.pid)
        m.uncertain.add(a.pid)  # his quotas and bindings: lapses follow the event


class ChangeType(Keyed):
    name, service, weight = "ChangeInsuranceType", "account", 1

    def make(self, w: World) -> Op | None:
        pid = w.opened()
        if pid is None:
            return None
        request = pb.ChangeInsuranceTypeRequest(
            person_id=pid,
            insurance_type=w.rng.choice((EMPLOYEE, RESIDENT)),  # type: ignore[arg-type]
            request_id=w.rid("y"),
        )
        return self.made(w, request, "person_id")

    def predict(self, m: Model, op: Op) -> Any:
        a, new = _account(m, op), op.request.insurance_type
        if a is None:
            return "ACCOUNT_NOT_FOUND"
        if a.closed:
            return "ACCOUNT_CLOSED"
        if a.type != new and a.stop:
            return "INSURANCE_STOPPED"
        return (a.status, new, a.stop, a.region, a.balance)

    def effect(self, op: Op) -> Any:
        return _view(op.answer)

    def apply(self, m: Model, op: Op) -> None:
        a = m.held(op.request.person_id)
        if a.type != op.request.insurance_type:
            a.type, a.kept = op.request.insurance_type, op.request.insurance_type == RESIDENT
            if a.type == RESIDENT:
                m.end_funded(a.pid, QuotaEndReason.FUNDER_NOT_EMPLOYEE)
            m.uncertain.add(a.pid)  # a binder who became resident: his bindings lapse


class Withdraw(Keyed):
    name, service, weight = "WithdrawBalance", "account", 1

    def make(self, w: World) -> Op | None:
        stopped = [p for p, a in sorted(w.model.accounts.items()) if a.stop and not a.closed]
        pid = w.rng.choice(stopped) if stopped and w.rng.randrange(4) else w.opened()
        if pid is None:
            return None
        request = pb.WithdrawBalanceRequest(
            person_id=pid,
            reason=w.rng.choice((1, 2, 3, 3, 0)),  # type: ignore[arg-type]
            payee="继承人",
            request_id=w.rid("w"),
        )
        return self.made(w, request, "person_id")

    def early(self, op: Op) -> str:
        return "WITHDRAWAL_NOT_ALLOWED" if op.request.reason == 0 else ""

    def predict(self, m: Model, op: Op) -> Any:
        a, reason = _account(m, op), op.request.reason
        if a is None:
            return "ACCOUNT_NOT_FOUND"
        for refused, why in (
            (a.closed, "ACCOUNT_CLOSED"),
            (not a.personal, "NO_PERSONAL_ACCOUNT"),
            (not a.stop, "INSURANCE_NOT_STOPPED"),
            (a.stop != STOP_FOR_WITHDRAWAL[WithdrawalReason(reason)], "WITHDRAWAL_NOT_ALLOWED"),
        ):
            if refused:
                return why
        return -a.balance

    def effect(self, op: Op) -> Any:
        return op.answer.amount_fen

    def apply(self, m: Model, op: Op) -> None:
        a = m.held(op.request.person_id)
        m.end_funded(a.pid, QuotaEndReason.INSURANCE_ENDED)
        m.relative_changed(a.pid)
        m.move(a.pid, op.answer.amount_fen, "withdrawal")
        a.status = CLOSED
        m.closing(a.pid, not op.alone)
        m.uncertain.add(a.pid)


class Transfer(Keyed):
    name, service, weight = "TransferAccount", "account", 1

    def make(self, w: World) -> Op | None:
        pid = w.opened()
        if pid is None:
            return None
        here = w.model.accounts[pid].region
        region = w.rng.choice([r for rs in REGIONS.values() for r in rs if r != here])
        request = pb.TransferAccountRequest(
            person_id=pid,
            to_region_code=region,
            payee=w.rng.choice(("", "本人银行账户")),
            request_id=w.rid("v"),
        )
        return self.made(w, request, "person_id")

    def predict(self, m: Model, op: Op) -> Any:
        a, r = _account(m, op), op.request
        if a is None:
            return "ACCOUNT_NOT_FOUND"
        if province(a.region) == province(r.to_region_code):
            if a.closed:
                return "ACCOUNT_CLOSED"
            return (a.status, a.type, a.stop, r.to_region_code, a.balance)
        receives = m.policy.for_region(r.to_region_code).accepts_transfers
        if not receives and not r.payee:
            return "INVALID_ARGUMENT"
        if a.closed:
            return "ACCOUNT_CLOSED"
        return (MOVED_OUT, a.type, a.stop, a.region, 0)

    def effect(self, op: Op) -> Any:
        return _view(op.answer)

    def apply(self, m: Model, op: Op) -> None:
        a = m.held(op.request.person_id)
        m.end_funded(a.pid, QuotaEndReason.MOVED)
        m.relative_changed(a.pid)
        if op.answer.status == MOVED_OUT:
            a.status = MOVED_OUT  # its whole balance paid out: what the round ends with
            a.balance = 0
            m.closing(a.pid, not op.alone)
        else:
            a.region = op.request.to_region_code
        m.uncertain.add(a.pid)
