"""Invariant 2 over one payment record (a settlement's or a premium's, lua/payment.lua): the
record is the settlement's record, so its legs, the payers' ledgers, their refunds and the
consumption-record indexes must tell the same story in the state the record is in."""

from __future__ import annotations

from services.account.domain import Payment, Share
from services.account.store import premium_mark
from services.audit.model import Json, Leg, PaymentBundle, Violation, problems, violation
from services.common.enums import EntryKind, PaymentState
from services.common.ids import mask
from services.settlement.bill import Bill, PremiumOrder

_DECODE_ERRORS = (KeyError, ValueError, TypeError)


def premium_year(record: Json) -> str | None:
    """The mark of the year and kind a premium record pays (store.premium_mark, from its
    details), for the reader to find the patient's premium-year marker; None if the record is
    no readable premium."""
    if str(record.get("kind")) != str(int(EntryKind.PREMIUM)) or not record.get("details"):
        return None
    try:
        order = PremiumOrder.from_details(str(record["details"]).encode())
    except _DECODE_ERRORS:
        return None
    return premium_mark(order.kind, order.year)


def check_payment(p: PaymentBundle, recovery_after_ms: int = 30_000) -> list[Violation]:
    """Invariant 2 over one payment record and what its payers' accounts hold for it; and 3:
    a payment being made in steps is finished within the recovery window."""
    who = p.payment_id
    if p.record.get("phase") == "void":  # attempts given up: nothing was paid
        return []
    if p.record.get("phase") == "paying":
        age_ms = p.now_ms - int(p.record.get("at_ms") or 0)
        if age_ms <= recovery_after_ms:
            return []
        detail = f"being made for {age_ms // 1000} s, past the recovery window"
        return [violation("payment.in-flight", who, detail)]
    try:
        pay = Payment.from_script(p.record)
    except _DECODE_ERRORS:
        return [violation("payment.record", who, "the record is unreadable")]
    if pay.payment_id != p.payment_id:
        return [violation("payment.record", who, f"the record names payment {pay.payment_id}")]
    if pay.state == PaymentState.REVERSED:  # a tombstone (reverse_payment.lua): nothing paid
        listed = ["a REVERSED record lists legs"] if pay.shares else []
        return problems("payment.record", who, listed)
    out = problems("payment.record", who, _form(pay))
    if out:
        return out  # the legs cannot be matched against ledgers they do not describe
    legs = _legs(pay, p)
    out += problems("payment.bill", who, _bill(pay))
    out += problems("payment.debit", who, [f for s, leg in legs for f in _debit(pay, s, leg)])
    cancelling = "cancelling" in p.record
    refunds = [f for s, leg in legs for f in _refund(pay, s, leg, cancelling)]
    out += problems("payment.refund", who, refunds)
    out += problems("payment.index", who, _indexes(pay, p))
    return out


def _legs(pay: Payment, p: PaymentBundle) -> list[tuple[Share, Leg]]:
    """Each share with what its payer's account holds for it (the reader reads one `Leg` per
    share of the same record, so a difference in number is a bug of the audit: it raises)."""
    return list(zip(pay.shares, p.legs, strict=True))


def _form(pay: Payment) -> list[str]:
    """What pay.lua and cancel_payment.lua can write: a paid or cancelled settlement or premium
    (quotes are never stored, premiums never cancelled), each leg a positive amount from a
    distinct source (a payer's account, or one of his aid quotas), the patient's own leg marked
    own."""
    if pay.state not in (PaymentState.PAID, PaymentState.CANCELLED):
        return [f"state {pay.state.name} is never stored"]
    found = []
    if pay.kind not in (EntryKind.SETTLEMENT, EntryKind.PREMIUM):
        found.append(f"kind {pay.kind} is no settlement or premium")
    if pay.kind == EntryKind.PREMIUM and pay.state == PaymentState.CANCELLED:
        found.append("a premium is never cancelled")
    if pay.kind == EntryKind.PREMIUM and len(pay.shares) != 1:
        found.append(f"a premium is paid from one account, the record lists {len(pay.shares)}")
    if len({(s.person_id, s.quota_id) for s in pay.shares}) != len(pay.shares):
        found.append("a payer has two legs from one source")  # (N3: a quota's and his own)
    for i, s in enumerate(pay.shares, start=1):
        if s.amount_fen <= 0:
            found.append(f"leg {i} is {s.amount_fen} fen")
        if s.own_account != (s.person_id == pay.patient_id):
            found.append(f"leg {i} of {mask(s.person_id)} is marked own={s.own_account}")
    return found


def _bill(pay: Payment) -> list[str]:
    """The bill the settlement service kept with the payment (services.settlement.bill): the
    legs pay at most the personal burden, the rest is cash (S2, S7), and only from the accounts
    the bill allowed (S3); a premium is paid whole by its payer (A2). A payment another service
    made without details has no bill to check."""
    if not pay.details:
        return []
    if pay.kind == EntryKind.PREMIUM:
        try:
            order = PremiumOrder.from_details(pay.details.encode())
        except _DECODE_ERRORS:
            return ["the details are no premium order"]
        paid = [(s.person_id, s.amount_fen) for s in pay.shares]
        if order.beneficiary_id != pay.patient_id or paid != [(order.payer_id, order.amount_fen)]:
            return [f"the order is {order.amount_fen} fen from {mask(order.payer_id)} for "
                    f"{mask(order.beneficiary_id)}; the record differs"]  # fmt: skip
        return []
    try:
        bill = Bill.from_details(pay.details.encode())
    except _DECODE_ERRORS:
        return ["the details are no bill"]
    found = []
    if bill.settlement_id != pay.payment_id or bill.patient_id != pay.patient_id:
        found.append("the bill is another settlement's")
    if bill.medfee_total_fen != bill.fund_pay_fen + bill.personal_burden_fen:
        found.append("medfee_total != fund_pay + personal_burden")
    burden, accounts = bill.personal_burden_fen, sum(s.amount_fen for s in pay.shares)
    if accounts > burden:
        found.append(f"the legs pay {accounts} fen of a personal burden of {burden} fen")
    if pay.shares and not bill.use_personal_account:
        found.append("the bill declined the accounts, the record lists legs")
    if any(not s.own_account for s in pay.shares) and not bill.use_family_aid:
        found.append("the bill declined family aid, the record lists family legs")
    return found


def _debit(pay: Payment, s: Share, leg: Leg) -> list[str]:
    """The leg's debit entry, as pay.lua appended it: on the payer's ledger, under the leg's
    entry id, of the payment's kind, for the leg's amount, referring to the payment."""
    at = f"leg of {mask(s.person_id)} ({s.entry_id})"
    d = leg.debit
    if d is None:
        return [f"{at}: no such entry on the payer's ledger"]
    want = {"entry_id": s.entry_id, "person_id": s.person_id, "kind": str(int(pay.kind)),
            "amount": str(-s.amount_fen), "balance_after": str(s.balance_after_fen),
            "reference": pay.payment_id}  # fmt: skip
    wrong = sorted(f for f, v in want.items() if str(d.get(f)) != v)
    return [f"{at}: the entry's {', '.join(wrong)} differ from the leg's"] if wrong else []


def _refund(pay: Payment, s: Share, leg: Leg, cancelling: bool) -> list[str]:
    """CANCELLED: each leg credited back once, in full (payment.lua `refund_share`). PAID:
    none, unless a cancel in steps is under way (its journal in the record, `cancelling`): it
    refunds leg by leg before the record says CANCELLED (stepwise.py), so then a leg may be
    refunded, in full, or not yet."""
    at = f"leg of {mask(s.person_id)} ({s.entry_id})"
    if pay.state == PaymentState.PAID and not cancelling:
        return [f"{at} is refunded, but the payment stands"] if leg.refund else []
    if leg.refund is None:
        return (
            []
            if pay.state == PaymentState.PAID
            else [f"{at} of {s.amount_fen} fen is not refunded"]
        )
    e = leg.refund_entry
    if e is None or str(e.get("kind")) != str(int(EntryKind.REFUND)):
        return [f"{at}: its refund entry {leg.refund.get('entry_id')} is missing"]
    if str(e.get("amount")) != str(s.amount_fen):
        return [f"{at} of {s.amount_fen} fen refunded with {e.get('amount')} fen"]
    return []


def _indexes(pay: Payment, p: PaymentBundle) -> list[str]:
    """A settlement is in the patient's consumption records and in each family payer's (S13);
    a premium is the one its patient's premium-year marker names (A2: once a year)."""
    if pay.kind == EntryKind.PREMIUM:
        year = premium_year(p.record)
        if year is not None and p.premium_marker != pay.payment_id:
            return [f"the premium-year {year} marker names {p.premium_marker}"]
        return []
    found = [] if p.paid_for else ["not in the patient's consumption records"]
    return found + [
        f"not in the family-aid records of {mask(s.person_id)}"
        for s, leg in _legs(pay, p) if not s.own_account and not leg.paid_by
    ]  # fmt: skip
