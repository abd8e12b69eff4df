"""An operation of the workload: one RPC as a caller makes it, what it may touch, and what its
answer was; and the kinds of operation, each able to make one from the state of the run and to
judge an answer against the model (services.sim.ops_accounts, ops_bindings, ops_payments).

An answer is judged in one of two ways. An operation that ran alone on its people (no other
operation of its round touched any of them, and nothing about them is uncertain) is predicted
exactly by the rules (services.sim.rules) and its answer must match: accepted or refused as
predicted, with the predicted money effect. One that raced another on the same accounts is held
to what holds whatever the order (the split of a bill adds up, each payer is someone who may
pay). Either way its effect on the money is then applied to the model, once.
"""

from __future__ import annotations

import abc
import dataclasses
import datetime as dt
import random
from typing import Any

from services.common.auth import Caller
from services.sim.model import Model
from services.sim.population import Population
from services.sim.scheduler import Runner

SERVICE = Caller("service", "sim")
# Answers that say nothing was done and the call may be made again.
AGAIN = frozenset({"LOCK_TIMEOUT", "SETTLEMENT_IN_PROGRESS", "REQUEST_IN_PROGRESS"})
# Answers that leave the outcome unknown: the work may have been done or not.
UNKNOWN = frozenset(
    {"crashed", "cancelled", "DEADLINE_EXCEEDED", "UNAVAILABLE", "DEPENDENCY_UNAVAILABLE"}
)


@dataclasses.dataclass(eq=False)
class Op:
    n: int
    kind: Kind
    request: Any  # the RPC's request message (its type is its kind's)
    touches: frozenset[str]
    caller: Caller = SERVICE
    note: dict[str, Any] = dataclasses.field(default_factory=dict)
    retries: int = 0
    answer: Any = None
    reason: str = ""  # '' accepted; a refusal's reason; or one of UNKNOWN
    alone: bool = False  # no other operation of its round touched what it touches
    runner: Runner | None = None

    @property
    def unknown(self) -> bool:
        return self.reason in UNKNOWN

    @property
    def again(self) -> bool:
        return self.reason in AGAIN

    def line(self) -> str:
        """The operation and its outcome, as the trace keeps it (no time, nothing random)."""
        outcome = self.reason or "OK"
        key = self.note.get("key") or getattr(self.request, "request_id", "")
        return f"#{self.n} {self.kind.name} {key} -> {outcome}"


@dataclasses.dataclass
class World:
    """What operations are made from: the seed, the people, the model, the day."""

    rng: random.Random
    people: Population
    model: Model
    today: dt.date
    n: int = 0  # operations made so far
    rids: int = 0  # request ids made so far
    # requests sent, by kind: repeated and reused on purpose
    sent: dict[str, list[Any]] = dataclasses.field(default_factory=dict)

    def rid(self, method: str) -> str:
        self.rids += 1
        return f"{method}-{self.rids}"

    def sent_of(self, kind: str) -> list[Any]:
        return self.sent.setdefault(kind, [])

    def anyone(self) -> str:
        return self.rng.choice(self.people.people).pid

    def opened(self, *, personal: bool = False) -> str | None:
        """Someone with an open account (with a personal account, when asked)."""
        found = [
            p
            for p, a in sorted(self.model.accounts.items())
            if not a.closed and (a.personal or not personal)
        ]
        return self.rng.choice(found) if found else None

    def amount(self, usual: int) -> int:
        """Mostly a usual amount; sometimes a hostile one (1 fen, the largest, or invalid)."""
        roll = self.rng.randrange(100)
        if roll < 3:
            return 1
        if roll < 5:
            return 10**12
        if roll < 7:
            return self.rng.choice((0, -1, 10**12 + 1))
        return self.rng.randint(1, usual)


class Kind(abc.ABC):
    """One RPC of the contract, as the workload makes it (each kind says how it makes one and
    how it judges the answer)."""

    name = ""
    service = ""
    weight = 1

    @abc.abstractmethod
    def make(self, w: World) -> Op | None:
        """An operation of this kind now, or None when there is nothing it could act on."""

    @abc.abstractmethod
    def judge(self, m: Model, op: Op, exact: bool) -> list[str]:
        """What the answer shows wrong (predicted when `exact`), its effect then applied."""

    def repeat(self, w: World, op: Op) -> Op:
        """The same request again (a caller's retry), or with other content under its key."""
        return dataclasses.replace(
            op, n=w.n + 1, retries=op.retries + 1, answer=None, reason="", runner=None
        )


def expect(op: Op, predicted: object, got: object) -> list[str]:
    """A prediction against the answer, as a violation when they differ."""
    if predicted == got:
        return []
    return [
        f"model: {op.kind.name} #{op.n} {op.note.get('key', '')}: predicted {predicted}, "
        f"answered {got}"
    ]


def invalid(reason: str) -> bool:
    return reason.startswith("INVALID_")
