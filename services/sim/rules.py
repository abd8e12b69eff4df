"""The rules, written once, as predictions over the model (services.sim.model): what a
settlement takes from whom (the waterfall, S2-S5), whether a premium is paid and from whom
(A2), how much commercial insurance a holder may still buy (A3), what the month-end job pays.
Each returns the money effect an accepted call must have, or the reason a call is refused. Pure.
"""

from __future__ import annotations

import dataclasses

from services.settlement.bill import PremiumOrder
from services.sim.model import EMPLOYEE, MEDICAL, Q_ACTIVE, RESIDENT, SUSPENDED, Leg, Model


@dataclasses.dataclass(frozen=True)
class Bill:
    patient: str
    amount: int
    day: str
    own: bool  # use_personal_account
    family: bool  # use_family_aid (and own: S3)


def settle(m: Model, bill: Bill) -> str | list[Leg]:
    """The legs (payer, fen, quota), own account first, then his aid quotas oldest first, then
    his payers in their order, each up to what it may give (S2, S4, N3: an account its
    available balance, a quota what remains of it); or why the patient may not settle (S5)."""
    a = m.account(bill.patient)
    if a is None:
        return "ACCOUNT_NOT_FOUND"
    if a.status == SUSPENDED:
        return "ACCOUNT_SUSPENDED"
    if a.closed:
        return "ACCOUNT_CLOSED"
    if a.stop:
        return "INSURANCE_STOPPED"
    left, legs = bill.amount, []
    sources: list[tuple[str, str]] = [(bill.patient, "")] if bill.own else []
    if bill.own and bill.family:
        sources += [(q.funder, q.qid) for q in m.quotas_of(bill.patient) if q.status == Q_ACTIVE]
        sources += [(b.binder, "") for b in m.payers(bill.patient) if b.valid_on(bill.day)]
    for pid, quota in sources:
        payer = m.account(pid)
        if left == 0 or payer is None or payer.why_not_pay() or payer.balance <= 0:
            continue
        if not quota and pid != bill.patient and payer.type != EMPLOYEE:
            continue
        take = min(left, m.quotas[quota].remaining if quota else m.available(pid))
        if take > 0:
            legs.append((pid, take, quota))
            left -= take
    return legs


def premium(
    m: Model,
    payer: str,
    beneficiary: str,
    year: int,
    amount: int,
    day: str,
    payment_id: str = "",
    kind: int = MEDICAL,
    from_quota: bool = True,
) -> str | tuple[str, int, str]:
    """(payer, fen, quota) when one source pays the whole premium (A2, N5: the payer's first
    ACTIVE quota for the beneficiary that covers it, else his own account); else why not. A
    payment made before under the same id is the answer, whatever its accounts are now."""
    if payment_id in m.premiums:
        made = m.premiums[payment_id]
        return (
            (made[0], made[3], made[5])
            if made[:5] == (payer, beneficiary, year, amount, kind)
            else "IDEMPOTENCY_CONFLICT"
        )
    b = m.account(beneficiary)
    if b is None:
        return "ACCOUNT_NOT_FOUND"
    for refused, reason in (
        (kind == MEDICAL and b.type != RESIDENT, "BENEFICIARY_NOT_RESIDENT"),
        (b.closed, "ACCOUNT_CLOSED"),
        (b.status == SUSPENDED, "ACCOUNT_SUSPENDED"),
        (bool(b.stop), "INSURANCE_STOPPED"),
        ((beneficiary, kind, year) in m.years, "PREMIUM_ALREADY_PAID"),
    ):
        if refused:
            return reason
    a = m.account(payer)
    if a is None:
        return "ACCOUNT_NOT_FOUND"
    covering = [
        q
        for q in m.quotas_of(beneficiary)
        if q.funder == payer and q.status == Q_ACTIVE and q.remaining >= amount
    ]
    if payer != beneficiary and from_quota and covering:
        return a.why_not_pay() or (payer, amount, covering[0].qid)
    if payer != beneficiary:
        bound = any(p.binder == payer and p.valid_on(day) for p in m.payers(beneficiary))
        if not bound or a.type != EMPLOYEE:
            return "NOT_BOUND"
    why = a.why_not_pay()
    if why:
        return why
    return (payer, amount, "") if m.available(payer) >= amount else "INSUFFICIENT_FUNDS"


def commercial(
    m: Model, pid: str, amount: int, partner: bool, policy_no: str, year: int
) -> str | int:
    """The fen a purchase takes (A3: this year's purchases and this one within the ratio of
    the available balance and them), or why it is refused."""
    a = m.account(pid)
    if a is None:
        return "ACCOUNT_NOT_FOUND"
    why = a.why_not_pay()
    if why:
        return why
    if not partner:
        return "INSURER_NOT_PARTNER"
    if policy_no in a.policies:
        return "POLICY_NO_IN_USE"
    ratio = m.policy.for_region(a.region).commercial_ratio_percent
    spent = a.spent(year)
    limit = (m.available(pid) + spent) * ratio // 100 - spent
    return amount if amount <= limit else "COMMERCIAL_LIMIT_EXCEEDED"


def month_end(m: Model, year: int, day: str) -> dict[str, str]:
    """What the month-end job does for each enabled auto-pay: 'paid' (now or before) or the
    reason it is skipped."""
    out = {}
    for beneficiary, (payer, enabled) in sorted(m.autopays.items()):
        if not enabled:
            continue
        found = premium(
            m,
            payer,
            beneficiary,
            year,
            m.premium_of(beneficiary),
            day,
            autopay_id(beneficiary, year),
            from_quota=False,
        )
        if found in ("PREMIUM_ALREADY_PAID", "IDEMPOTENCY_CONFLICT") or not isinstance(found, str):
            out[beneficiary] = "paid"
        else:
            out[beneficiary] = found
    return out


def autopay_id(beneficiary: str, year: int) -> str:
    """The payment id the month-end job pays a beneficiary's year under (settlement.autopay)."""
    return PremiumOrder("", beneficiary, year, 0).payment_id(f"autopay:{beneficiary}:{year}")


def premium_id(request_id: str) -> str:
    """The payment id of a PayResidentPremium request (its marker: services.common.idempotency)."""
    return PremiumOrder("", "", 0, 0).payment_id(f"PayResidentPremium:{request_id}")
