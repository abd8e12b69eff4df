"""Operations keyed by their request id (API.md "Conventions"): a repeat with the same content
answers what the first answered, with nothing done twice; other content under a key that was
answered is IDEMPOTENCY_CONFLICT; a key whose request was refused may be used again."""

from __future__ import annotations

import abc
from typing import Any, TypeVar

from google.protobuf.message import Message

from services.sim.model import Model
from services.sim.ops import Kind, Op, World, expect, invalid

M = TypeVar("M", bound=Message)


def content(request: Message) -> bytes:
    copy = type(request)()
    copy.CopyFrom(request)
    if "request_id" in copy.DESCRIPTOR.fields_by_name:
        copy.ClearField("request_id")
    return copy.SerializeToString(deterministic=True)


class Keyed(Kind):
    """A kind whose answers are judged by `predict` (a reason, or what `effect` reads from an
    accepted answer) and applied by `apply`, once per request id."""

    def key(self, op: Op) -> str:
        return f"{self.name}:{op.request.request_id}"

    def early(self, op: Op) -> str:
        """The refusal the service gives before it looks at the request id (an argument
        error), or ''."""
        return ""

    @abc.abstractmethod
    def predict(self, m: Model, op: Op) -> Any:
        """What the rules say the answer is: a refusal's reason, or what `effect` reads."""

    def effect(self, op: Op) -> Any:
        return "OK"

    @abc.abstractmethod
    def apply(self, m: Model, op: Op) -> None:
        """The accepted answer's effect on the model, once."""

    def judge(self, m: Model, op: Op, exact: bool) -> list[str]:
        before = m.done.get(self.key(op))
        answer = op.answer.SerializeToString() if not op.reason else op.reason
        early = self.early(op)
        if before is not None:  # answered before: the same answer, or a conflict
            same = before[0] == content(op.request)
            return expect(op, before[1] if same else early or "IDEMPOTENCY_CONFLICT", answer)
        out: list[str] = []
        if exact:
            predicted = early or self.predict(m, op)
            if not (isinstance(predicted, str) and invalid(predicted) and invalid(op.reason)):
                out = expect(op, predicted, op.reason or self.effect(op))
        if not op.reason:
            self.apply(m, op)
            m.done[self.key(op)] = (content(op.request), answer)
        return out

    def made(self, w: World, fresh: Message, *people: str) -> Op:
        """The operation of this request (or of one sent before: `reuse`), touching the people
        its fields `people` name."""
        request = self.reuse(w, fresh)
        return Op(0, self, request, frozenset(getattr(request, f) for f in people))

    def reuse(self, w: World, fresh: M) -> M:
        """Sometimes a request id used before: with the same content (a repeat) when its
        request was answered, else with this content (a conflict, if it was answered)."""
        sent = w.sent_of(self.name)
        if sent and w.rng.randrange(100) < 6:
            old: M = w.rng.choice(sent[-50:])
            if f"{self.name}:{old.request_id}" in w.model.done:  # type: ignore[attr-defined]
                if w.rng.randrange(2):
                    return old
                fresh.request_id = old.request_id  # type: ignore[attr-defined]
        sent.append(fresh)
        return fresh
