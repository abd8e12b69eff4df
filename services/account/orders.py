"""Payer orders as this process last saw them (the binding service sets them, B10).

Reading a patient's order costs a Redis round trip on every settlement with family aid, while
orders change only when a person binds, unbinds or reorders. So the account service keeps the
orders it has seen, with their versions, and hands the version to the payment script: the script
refuses an order whose version is no longer current and answers with the current one, and the
payment is made again from it (services.account.payments).
"""

from __future__ import annotations

import collections

from services.account.domain import Source


def with_order(
    patient: str, sources: list[Source], order: list[Source], family_aid: bool
) -> list[Source]:
    """The sources, then (family_aid) the patient's order: his aid quotas oldest first, then his
    payers in their order (N3, B10); a payer given without his binding gets it from that order.
    Whoever may not pay now is skipped by the payment script, which checks each grant and
    quota: an old order pays no one it should not."""
    binding_of = {s.person_id: s.binding_id for s in order if not s.quota_id}
    full = [
        s if s.binding_id or s.quota_id or s.person_id == patient
        else Source(s.person_id, binding_of.get(s.person_id, ""))
        for s in sources
    ]  # fmt: skip
    if family_aid:
        given = {(s.person_id, s.quota_id) for s in full}
        full += [s for s in order if (s.person_id, s.quota_id) not in given]
    return full


class Orders:
    """The payer orders this process has seen, by beneficiary, with their versions; the
    payment script refuses one whose version is no longer current (StaleOrder)."""

    def __init__(self, size: int = 100_000) -> None:
        self.size = size
        self._known: collections.OrderedDict[str, tuple[int, list[Source]]] = (
            collections.OrderedDict()
        )

    def get(self, beneficiary: str) -> tuple[int, list[Source]]:
        """The order as last seen (-1 and none when never seen: the script then gives it)."""
        found = self._known.get(beneficiary)
        if found is None:
            return -1, []
        self._known.move_to_end(beneficiary)
        return found

    def put(self, beneficiary: str, version: int, order: list[Source]) -> None:
        self._known[beneficiary] = (version, order)
        self._known.move_to_end(beneficiary)
        if len(self._known) > self.size:
            self._known.popitem(last=False)
