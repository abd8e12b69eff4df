"""Invariant 1 over one account, and the account's own side of invariants 2 (its settlement
and premium debits, its refunds), 3 (its lock) and 4 (its family-aid grants)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from services.account.domain import Entry, Payment, Quota, place_in_id
from services.audit.model import AccountBundle, Json, Violation, problems, violation
from services.common.enums import BindingStatus, EntryKind, QuotaStatus
from services.common.ids import mask

PAYMENT_KINDS = frozenset({EntryKind.SETTLEMENT, EntryKind.PREMIUM})


def parsed_entries(ledger: list[Json]) -> list[Entry | None]:
    """The ledger as the services read it; None for an entry they could not read."""
    out: list[Entry | None] = []
    for d in ledger:
        try:
            out.append(Entry.from_script(d))
        except (KeyError, ValueError, TypeError):
            out.append(None)
    return out


def _committed_debits(a: AccountBundle) -> set[str]:
    """Debit entries a committed hold made (CommitHolds, before the hold RPCs were retired):
    they belong to no payment record."""
    return {str(h.get("entry_id")) for h in a.holds.values() if h.get("state") == "COMMITTED"}


def _payment_debits(a: AccountBundle, entries: Iterable[Entry | None]) -> list[Entry]:
    committed = _committed_debits(a)
    return [
        e for e in entries
        if e and e.kind in PAYMENT_KINDS and e.amount_fen < 0 and e.entry_id not in committed
    ]  # fmt: skip


def payment_references(a: AccountBundle) -> set[str]:
    """The payments whose records the account's settlement and premium debits, and its lock,
    name (the reader fetches them before the check)."""
    parts = (a.fields.get("lock") or "").split(" ")
    locked_for = {parts[1]} if len(parts) == 3 and parts[1] != "-" else set()
    return {e.reference for e in _payment_debits(a, a.ledger)} | locked_for


def granted_bindings(a: AccountBundle) -> set[str]:
    """The bindings the account's active family-aid grants name (fetched before the check)."""
    return {binding_id for binding_id, g in a.grants.items() if g.get("active")}


def check_account(a: AccountBundle, recovery_after_ms: int = 30_000) -> list[Violation]:
    """Invariant 1 over one account, and the account's own side of 2 (its debits and refunds),
    3 (its lock) and 4 (its grants)."""
    who = mask(a.person_id)
    try:
        balance, seq = (int(a.fields[f]) for f in ("balance", "seq"))
    except (KeyError, ValueError):
        return [violation("account.record", who, "balance or seq missing or not whole")]
    out = []
    if a.fields.get("person_id") != a.person_id:
        out += [violation("account.record", who, "the hash names another person")]
    entries = a.ledger
    if None not in entries:
        total = sum(e.amount_fen for e in entries if e)
        if balance != total:
            detail = f"balance {balance} fen, its {len(entries)} entries sum to {total} fen"
            out += [violation("account.ledger-sum", who, detail)]
    out += problems("account.negative", who, _negative(balance, entries))
    out += problems("ledger.sequence", who, _sequence(a, seq, entries))
    out += problems("lock.stuck", who, _lock(a, recovery_after_ms))
    out += problems("ledger.refund", who, _refunds(a, entries))
    out += problems("payment.unlisted-debit", who, _unlisted(a, entries))
    out += problems("grant.orphan", who, _orphan_grants(a))
    out += problems("quota.reserved", who, _reserved(a, balance))
    out += problems("quota.used", who, _quota_used(a, entries))
    return out


def _quotas(a: AccountBundle) -> tuple[dict[str, Quota], list[str]]:
    """The aid quotas the account funds, and those it keeps unreadable."""
    found, broken = {}, []
    for quota_id, kept in a.funds.items():
        try:
            found[quota_id] = Quota.from_kept(a.person_id, quota_id, kept)
        except (TypeError, ValueError):
            broken.append(f"quota {quota_id} is unreadable")
    return found, broken


def _reserved(a: AccountBundle, balance: int) -> list[str]:
    """N2: what the account sets aside (`reserved`) is what remains of its ACTIVE quotas, and
    never more than its balance (so its available balance is never negative)."""
    quotas, found = _quotas(a)
    try:
        reserved = int(a.fields.get("reserved") or 0)
    except ValueError:
        return [*found, f"reserved {a.fields.get('reserved')!r} is not a whole number"]
    due = sum(q.remaining_fen for q in quotas.values() if q.status == QuotaStatus.ACTIVE)
    if reserved != due:
        found.append(f"reserved {reserved} fen, its ACTIVE quotas have {due} fen left")
    if reserved > balance or reserved < 0:
        found.append(f"reserved {reserved} fen of a balance of {balance} fen")
    found += [f"quota {i} has used {q.used_fen} of {q.granted_fen} fen"
              for i, q in quotas.items() if not 0 <= q.used_fen <= q.granted_fen]  # fmt: skip
    return found


def _quota_used(a: AccountBundle, entries: list[Entry | None]) -> list[str]:
    """N3, N5: each quota's `used` is the sum of the shares drawn from it (the account's debits
    the payments name as that quota's) less the refunds that went back to it (`q` in the refund
    record: a refund after the quota ended goes to the available balance instead)."""
    quotas, _ = _quotas(a)
    if not quotas:
        return []
    drawn: Counter[str] = Counter()
    of_entry: dict[str, str] = {}
    for e in _payment_debits(a, entries):
        for share in (a.payments.get(e.reference) or {}).get("shares") or []:
            if share.get("entry_id") == e.entry_id and share.get("quota_id"):
                of_entry[e.entry_id] = share["quota_id"]
                drawn[share["quota_id"]] -= e.amount_fen
    for debit_id, r in a.refunds.items():
        if r.get("q") and debit_id in of_entry:
            drawn[of_entry[debit_id]] -= next(
                (-e.amount_fen for e in entries if e and e.entry_id == debit_id), 0
            )
    return [f"quota {i} has used {q.used_fen} fen, its shares less refunds {drawn[i]} fen"
            for i, q in quotas.items() if q.used_fen != drawn[i]]  # fmt: skip


def _negative(balance: int, entries: list[Entry | None]) -> list[str]:
    """A balance is never negative: not now, nor after any entry of its history."""
    now = [f"balance {balance} fen"] if balance < 0 else []
    return now + [
        f"entry {place} ({e.entry_id}) left {e.balance_after_fen} fen"
        for place, e in enumerate(entries, start=1) if e and e.balance_after_fen < 0
    ]  # fmt: skip


def _sequence(a: AccountBundle, seq: int, entries: list[Entry | None]) -> list[str]:
    """Entries 1..seq in order, each found at its place (by the place its id carries, else by
    the entry index), each balance_after the one before plus its amount (an account starts at
    0: open.lua)."""
    found = [] if len(entries) == seq else [f"seq is {seq}, the ledger holds {len(entries)}"]
    indexed = sum(1 for e in entries if e is None or place_in_id(e.entry_id) is None)
    if len(a.index) != indexed:
        found.append(f"the entry index names {len(a.index)} entries, not {indexed}")
    before = 0
    for place, e in enumerate(entries, start=1):
        if e is None:
            found.append(f"entry {place} is unreadable")
            continue
        if e.person_id != a.person_id:
            found.append(f"entry {place} ({e.entry_id}) names another person")
        if e.balance_after_fen != before + e.amount_fen:
            found.append(f"entry {place} ({e.entry_id}) leaves {e.balance_after_fen} fen after "
                         f"{before} {e.amount_fen:+d}")  # fmt: skip
        carried = place_in_id(e.entry_id)
        if carried is not None and carried != place:
            found.append(f"entry {place} ({e.entry_id}) names place {carried}")
        if carried is None and a.index.get(e.entry_id) != str(place):
            found.append(f"entry {place} ({e.entry_id}) is indexed at {a.index.get(e.entry_id)}")
        before = e.balance_after_fen
    repeated = [i for i, n in Counter(e.entry_id for e in entries if e).items() if n > 1]
    return found + [f"entry id {i} appears more than once" for i in repeated]


def _lock(a: AccountBundle, recovery_after_ms: int) -> list[str]:
    """A payment's lock on the account (services.account.locks) whose lease ended longer ago
    than the recovery window, while that payment is not finished: the recovery loop should
    have finished its journal, or given the attempt up and released what it took. (A lock
    whose lease ran out after its work was done is free: the next taker takes it over.)"""
    raw = a.fields.get("lock") or ""
    if not raw:
        return []
    parts = raw.split(" ")
    if len(parts) != 3 or not parts[2].isdigit():
        return [f"the lock {raw!r} is unreadable: no one can take it over"]
    what, ends = parts[1], int(parts[2])
    if what == "-" or ends + recovery_after_ms > a.now_ms:
        return []
    rec = a.payments.get(what)
    if rec is not None and "phase" not in rec:
        return []
    return [f"locked for payment {what}, whose lease ended {(a.now_ms - ends) // 1000} s ago, "
            "and the payment is not finished"]  # fmt: skip


def _refunds(a: AccountBundle, entries: list[Entry | None]) -> list[str]:
    """Each refund record (payment.lua `refund_share`, cancel_policy.lua) names a debit and
    the refund entry of the same amount; each refund entry is named by exactly one record."""
    by_id = {e.entry_id: e for e in entries if e}
    found, named = [], Counter(str(r.get("entry_id")) for r in a.refunds.values())
    for debit_id, r in a.refunds.items():
        debit, refund = by_id.get(debit_id), by_id.get(str(r.get("entry_id")))
        if debit is None or debit.amount_fen >= 0:
            found.append(f"refund record for {debit_id}, which is no debit on this ledger")
        elif refund is None or refund.kind != EntryKind.REFUND:
            found.append(f"debit {debit_id} refunded by {r.get('entry_id')}, no refund entry")
        elif refund.amount_fen != -debit.amount_fen:
            found.append(f"debit {debit_id} of {-debit.amount_fen} fen refunded with "
                         f"{refund.amount_fen} fen")  # fmt: skip
    for e in by_id.values():
        if e.kind == EntryKind.REFUND and named[e.entry_id] != 1:
            found.append(f"refund entry {e.entry_id} answers {named[e.entry_id]} debits")
    return found


def _unlisted(a: AccountBundle, entries: list[Entry | None]) -> list[str]:
    """Each settlement or premium debit not made by a committed hold is a leg of the payment
    its reference names (pay.lua): so no entry refers to a payment that does not list it."""
    found = []
    for e in _payment_debits(a, entries):
        if e.reference in a.in_flight:  # its record is final with the payment's last step
            continue
        rec = a.payments.get(e.reference)
        try:
            pay = Payment.from_script(rec) if rec else None
        except (KeyError, ValueError, TypeError):
            pay = None
        legs = {(s.person_id, s.entry_id) for s in pay.shares} if pay else set()
        if (a.person_id, e.entry_id) not in legs:
            found.append(f"debit {e.entry_id} of {-e.amount_fen} fen names payment "
                         f"{e.reference}, which has no such leg")  # fmt: skip
    return found


# A grant is written before its binding becomes ACTIVE; a confirmation cut off after its grant
# leaves one under a binding still awaiting consent, which is on no payer list and pays nothing.
_MAY_BE_GRANTED = {str(int(BindingStatus.ACTIVE)), str(int(BindingStatus.PENDING_CONSENT))}


def _orphan_grants(a: AccountBundle) -> list[str]:
    """An active grant lets this account pay for someone: only under an ACTIVE binding made by
    this person (services.binding.lifecycle revokes a grant before a binding's end answers)."""
    found = []
    for binding_id in sorted(granted_bindings(a)):
        rec = a.bindings.get(binding_id)
        if rec is None:
            found.append(f"active grant for binding {binding_id}, which does not exist")
        elif str(rec.get("status")) not in _MAY_BE_GRANTED:
            found.append(f"active grant for binding {binding_id}, which has ended")
        elif rec.get("binder_id") != a.person_id:
            found.append(f"active grant for binding {binding_id} of another binder")
    return found
