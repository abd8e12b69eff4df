"""The settlement service's money RPCs as the workload makes them: bills settled (with repeated,
conflicting and reversed keys, hostile amounts and dates), cancelled and reversed (rules S1-S10),
resident premiums paid (A2); each predicted by the rules and applied through the model. The
month-end job and the auto-pays it follows are in services.sim.ops_premiums."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from gongji.settlement.v1 import settlement_pb2 as pb
from services.settlement.bill import settlement_id
from services.sim import rules
from services.sim.keyed import Keyed
from services.sim.model import LTC, MEDICAL, RESIDENT, Leg, Model, Settlement
from services.sim.ops import Kind, Op, World, expect
from services.sim.rules import premium_id

INSTITUTIONS = ("H43010500001", "H43010500002", "P43010500003", "H61040000001")
Today = Callable[[], dt.date]


def _content(r: pb.SettleRequest, today: dt.date) -> tuple[object, ...]:
    """What makes two requests under one key the same bill (S8), defaults applied."""
    return (
        r.patient_id,
        r.credential_type,
        r.agent_id,
        r.medfee_total_fen,
        r.fund_pay_fen,
        r.personal_burden_fen,
        r.use_personal_account if r.HasField("use_personal_account") else True,
        r.use_family_aid if r.HasField("use_family_aid") else True,
        r.service_date or today.isoformat(),
    )


def _refused(r: pb.SettleRequest, today: dt.date) -> str:
    """Why the settlement service refuses the bill before any account is read, or ''."""
    amounts = (r.medfee_total_fen, r.fund_pay_fen, r.personal_burden_fen)
    if min(amounts) < 0 or max(amounts) > 10**12 or amounts[0] != amounts[1] + amounts[2]:
        return "INVALID_AMOUNT"
    if r.service_date and not (
        (today - dt.timedelta(days=30)).isoformat() <= r.service_date <= today.isoformat()
    ):
        return "INVALID_DATE"
    return "CREDENTIAL_MISMATCH" if r.credential_holder_id != r.patient_id else ""


def legs_of(s: pb.Settlement) -> list[Leg]:
    return [(leg.payer_id, leg.amount_fen, leg.quota_id) for leg in s.legs]


def learn(m: Model, s: pb.Settlement, content: tuple[object, ...] | None) -> list[str]:
    """A settlement an answer shows, into the model once; what its split shows wrong."""
    out = []
    own = sum(leg.amount_fen for leg in s.legs if leg.payer_id == s.patient_id)
    if (s.acct_pay_fen, s.acct_mulaid_pay_fen) != (own, sum(f for _, f, _ in legs_of(s)) - own) or (
        s.cash_pay_fen < 0
        or s.personal_burden_fen != s.acct_pay_fen + s.acct_mulaid_pay_fen + s.cash_pay_fen
    ):
        out.append(f"settlement {s.settlement_id}: its split does not add up (S2)")
    strangers = [
        p
        for p, _, quota in legs_of(s)
        if p != s.patient_id
        and not quota
        and not {p, s.patient_id} & m.uncertain  # (a binding whose answer is not known yet)
        and not any(b.binder == p and b.beneficiary == s.patient_id for b in m.bindings.values())
    ]
    if strangers:
        out.append(f"settlement {s.settlement_id}: paid by {strangers}, never bound (S4)")
    others = [
        quota
        for p, _, quota in legs_of(s)
        if quota in m.quotas
        and (m.quotas[quota].funder, m.quotas[quota].relative) != (p, s.patient_id)
    ]
    if others:
        out.append(f"settlement {s.settlement_id}: drawn from others' quotas {others} (N3)")
    m.settle(Settlement(s.settlement_id, s.patient_id, content or (), legs_of(s)))
    return out


class Settle(Kind):
    name, service, weight = "Settle", "settlement", 14

    def __init__(self, today: Today) -> None:
        self.today = today

    def make(self, w: World) -> Op | None:
        sent = w.sent_of(self.name)
        roll = w.rng.randrange(100)
        if sent and roll < 8:
            request = w.rng.choice(sent)  # the same bill again (S8)
        else:
            request = self._bill(w, w.opened() or w.anyone())
            if sent and roll < 12:  # another bill under a key sent before
                request.medins_setl_id = w.rng.choice(sent).medins_setl_id
            sent.append(request)
        return self._op(w, request)

    def of(self, w: World, patient: str) -> Op:
        """A new bill of this patient's."""
        request = self._bill(w, patient)
        w.sent_of(self.name).append(request)
        return self._op(w, request)

    def _op(self, w: World, request: pb.SettleRequest) -> Op:
        """The bill's operation; its content (S8) as of the day it is sent."""
        sid = settlement_id(request.institution_id, request.medins_setl_id)
        return Op(
            0,
            self,
            request,
            _touches(w.model, request.patient_id, sid),
            note={"key": request.medins_setl_id, "sid": sid, "content": _content(request, w.today)},
        )

    def _bill(self, w: World, patient: str) -> pb.SettleRequest:
        burden = w.rng.choice((w.amount(40_000), w.rng.randint(0, 2_000), 0, 150_000))
        fund = w.rng.randint(0, 3 * max(burden, 1))
        institution = w.rng.choice(INSTITUTIONS)
        r = pb.SettleRequest(
            institution_id=institution,
            medins_setl_id=institution + w.rid(""),
            patient_id=patient,
            credential_type=w.rng.choice((1, 2, 3)),  # type: ignore[arg-type]
            credential_holder_id=patient,
            medfee_total_fen=fund + burden,
            fund_pay_fen=fund,
            personal_burden_fen=burden,
        )
        if w.rng.randrange(12) == 0:
            r.use_personal_account = False
        if institution.startswith("P") or w.rng.randrange(10) == 0:
            r.use_family_aid = w.rng.randrange(3) == 0
        days = w.rng.choice((0, 0, 0, 1, 5, 29, 30, 31, -1))
        if days or w.rng.randrange(2):
            r.service_date = (w.today - dt.timedelta(days=days)).isoformat()
        if w.rng.randrange(40) == 0:
            r.credential_holder_id = w.anyone()
        if w.rng.randrange(50) == 0:
            r.medfee_total_fen += 1
        return r

    def judge(self, m: Model, op: Op, exact: bool) -> list[str]:
        r, sid, today = op.request, op.note["sid"], self.today()
        content, known = _content(r, today), m.settlements.get(sid)
        got: Any = op.reason or legs_of(op.answer)
        refused = _refused(r, today)
        # A bill made is answered as made once its date is out of the window too (S8); so is
        # one under a key the model is not sure of (an attempt whose outcome is unknown, or a
        # bill under the same key racing this one), if it was made after all: then answered as
        # that bill (or IDEMPOTENCY_CONFLICT, another bill).
        made = known is not None or (not exact and op.reason != "INVALID_DATE")
        if refused == "INVALID_DATE" and r.credential_holder_id == r.patient_id and made:
            refused = ""
        if refused:
            return expect(op, refused, got)
        if op.alone and sid in m.reversed:  # (raced by its reversal, it may have come first)
            return expect(op, "SETTLEMENT_REVERSED", got)
        if op.alone and known is not None and known.content:
            return expect(
                op, known.legs if known.content == content else "IDEMPOTENCY_CONFLICT", got
            )
        out: list[str] = []
        if exact and known is None:  # (one learned from a read: its content is not known)
            bill = rules.Bill(
                r.patient_id,
                r.personal_burden_fen,
                content[-1],  # type: ignore[arg-type]
                bool(content[6]),
                bool(content[7]),
            )
            out = expect(op, rules.settle(m, bill), got)
        if not op.reason:
            out += learn(m, op.answer, content)
        return out

    def repeat(self, w: World, op: Op) -> Op:
        again = super().repeat(w, op)
        again.touches = _touches(w.model, op.request.patient_id, op.note["sid"])
        return again


def _raced(m: Model, op: Op) -> bool:
    """Whether something else acted on its people in an order the run does not know."""
    return not op.alone or bool(op.touches & m.uncertain)


def _touches(m: Model, patient: str, sid: str) -> frozenset[str]:
    """The patient, everyone ever bound to pay for him, and whoever paid under this key."""
    binders = {b.binder for b in m.bindings.values() if b.beneficiary == patient}
    funders = {q.funder for q in m.quotas_of(patient)}
    known = m.settlements.get(sid)
    payers = (p for p, _, _ in (known.legs if known else []))
    return frozenset({sid, patient, *binders, *funders, *payers} - {""})


class Cancel(Keyed):
    name, service, weight = "CancelSettlement", "settlement", 3

    def make(self, w: World) -> Op | None:
        found = sorted(w.model.settlements.items())
        if not found:
            return None
        sid, s = w.rng.choice(found)
        if not w.rng.randrange(15):
            sid = "S" + "0" * 24
        request = self.reuse(
            w, pb.CancelSettlementRequest(settlement_id=sid, reason="退费", request_id=w.rid("k"))
        )
        sid = request.settlement_id
        known = w.model.settlements.get(sid)
        touches = _touches(w.model, known.patient if known else s.patient, sid)
        return Op(0, self, request, touches, note={"key": sid[:9]})

    def predict(self, m: Model, op: Op) -> Any:
        s = m.settlements.get(op.request.settlement_id)
        if s is None:
            return "SETTLEMENT_NOT_FOUND"
        return "ALREADY_CANCELLED" if s.cancelled else s.legs

    def effect(self, op: Op) -> Any:
        return legs_of(op.answer)

    def apply(self, m: Model, op: Op) -> None:
        s = op.answer
        if s.settlement_id not in m.settlements:
            learn(m, s, None)
        m.cancel(s.settlement_id, op.request.request_id, raced=_raced(m, op))


class Reverse(Keyed):
    name, service, weight = "ReverseSettlement", "settlement", 2

    def make(self, w: World) -> Op | None:
        sent = w.sent_of("Settle")
        if not sent or not w.rng.randrange(5):
            key = w.rid("H43010500001R")  # never sent: a tombstone (S10)
            inst, patient = "H43010500001", ""
        else:
            r = w.rng.choice(sent)
            inst, key, patient = r.institution_id, r.medins_setl_id, r.patient_id
        return self.of(w, inst, key, patient, reuse=True)

    def of(self, w: World, institution: str, key: str, patient: str, reuse: bool = False) -> Op:
        """The reversal of this key (`reuse`: or, now and then, a request sent before)."""
        fresh = pb.ReverseSettlementRequest(
            institution_id=institution, medins_setl_id=key, request_id=w.rid("z")
        )
        request = self.reuse(w, fresh) if reuse else fresh
        sid = settlement_id(request.institution_id, request.medins_setl_id)
        known = w.model.settlements.get(sid)
        patient = known.patient if known else patient if request is fresh else ""
        touches = _touches(w.model, patient, sid)
        return Op(0, self, request, touches, note={"key": request.medins_setl_id, "sid": sid})

    def predict(self, m: Model, op: Op) -> Any:
        s = m.settlements.get(op.note["sid"])
        return (False, []) if s is None else (True, s.legs)

    def effect(self, op: Op) -> Any:
        return (op.answer.settlement_existed, legs_of(op.answer.settlement))

    def apply(self, m: Model, op: Op) -> None:
        if not op.answer.settlement_existed:
            m.reversed.add(op.note["sid"])
            return
        s = op.answer.settlement
        if s.settlement_id not in m.settlements:
            learn(m, s, None)
        m.cancel(s.settlement_id, op.request.request_id, raced=_raced(m, op))


class Premium(Keyed):
    name, service, weight = "PayResidentPremium", "settlement", 3

    def __init__(self, today: Today) -> None:
        self.today = today

    def make(self, w: World) -> Op | None:
        residents = [p for p, a in sorted(w.model.accounts.items()) if a.type == RESIDENT]
        beneficiary = w.rng.choice(residents) if residents else w.anyone()
        payers = [b.binder for b in w.model.payers(beneficiary)]
        payers += [q.funder for q in w.model.quotas_of(beneficiary)]
        payer = (
            w.rng.choice(payers)
            if payers and w.rng.randrange(5)
            else (beneficiary if w.rng.randrange(2) else w.anyone())
        )
        year = w.today.year + w.rng.choice((0, 0, 1, 2))
        amount = w.model.premium_of(beneficiary) if w.rng.randrange(5) else w.amount(40_000)
        kind = LTC if not w.rng.randrange(5) else 0  # unset: resident medical
        return self.of(w, payer, beneficiary, year, amount, kind)

    def of(
        self, w: World, payer: str, beneficiary: str, year: int, amount: int, kind: int = 0
    ) -> Op:
        request = pb.PayResidentPremiumRequest(
            payer_id=payer,
            beneficiary_id=beneficiary,
            year=year,
            amount_fen=amount,
            request_id=w.rid("r"),
            kind=kind,  # type: ignore[arg-type]
        )
        return self.made(w, request, "payer_id", "beneficiary_id")

    def early(self, op: Op) -> str:
        return "" if 0 < op.request.amount_fen <= 10**12 else "INVALID_AMOUNT"

    def predict(self, m: Model, op: Op) -> Any:
        r, today = op.request, self.today()
        if r.year not in (today.year, today.year + 1):
            return "INVALID_ARGUMENT"
        return rules.premium(
            m,
            r.payer_id,
            r.beneficiary_id,
            r.year,
            r.amount_fen,
            today.isoformat(),
            premium_id(r.request_id),
            r.kind or MEDICAL,
        )

    def effect(self, op: Op) -> Any:
        return (op.answer.payer_id, op.answer.amount_fen, op.answer.quota_id)

    def apply(self, m: Model, op: Op) -> None:
        p = op.answer
        if p.payment_id != premium_id(op.request.request_id):
            m.broken.append(f"premium {op.request.request_id} paid as {p.payment_id}")
        m.premium(
            p.payment_id, p.payer_id, p.beneficiary_id, p.year, p.amount_fen,
            p.kind or MEDICAL, p.quota_id,
        )  # fmt: skip
