"""A round: operations started together, each as a runner of the scheduler (an RPC through its
service's real handler and interceptor, or a pass of a background loop), run until none can go
on, and each one's outcome read: its answer, its refusal, or that it never answered."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import grpc

from services.common.rpc import reason_of
from services.sim.calls import SimContext
from services.sim.clock import SimClock
from services.sim.ops import Op
from services.sim.ops_premiums import Pass
from services.sim.scheduler import Handler, Runner, Scheduler
from services.sim.stack import Stack

DEADLINE_S = 3.0  # every call's deadline, in simulated seconds
_SERVICES = {
    "account": "gongji.account.v1.AccountService",
    "binding": "gongji.binding.v1.BindingService",
    "settlement": "gongji.settlement.v1.SettlementService",
}


class Rounds:
    def __init__(self, sched: Scheduler, stack: Stack, clock: SimClock) -> None:
        self.sched, self.stack, self.clock = sched, stack, clock
        self.handlers: dict[int, Handler] = {}
        self.ops: list[Op] = []
        self.faulty = True

    async def run(self, ops: list[Op], faulty: bool = True) -> tuple[list[str], list[Op]]:
        """Every operation run to its end (or its death), with those added while it ran; what
        went wrong outside the rules (a call stuck for ever, an exception no status covers)."""
        self.ops, self.faulty = list(ops), faulty
        for op in ops:
            self._start(op, faulty)
        await self.sched.run()
        return [v for op in self.ops for v in self._outcome(op)], self.ops

    def add(self, op: Op) -> None:
        """An operation started while the round runs (a recovery pass during a pause)."""
        self.ops.append(op)
        self._start(op, self.faulty)

    def _start(self, op: Op, faulty: bool) -> None:
        op.runner = Runner(op.n, op.kind.name, faulty)
        work: Callable[[], Coroutine[Any, Any, Any]]
        if isinstance(op.kind, Pass):
            service, work = self.stack.jobs[op.kind.name]
        else:
            service = op.kind.service
            server = self.stack.servers[service]
            path = f"/{_SERVICES[service]}/{op.kind.name}"
            context = SimContext(op.caller, self.clock, DEADLINE_S)
            request = op.request

            async def work() -> Any:
                return await server.invoke(path, request, context)

        self.handlers[op.n] = self.sched.start(op.runner, service, work)

    def _outcome(self, op: Op) -> list[str]:
        h = self.handlers.pop(op.n)
        task = h.task
        assert task is not None
        if not task.done():
            op.reason = "crashed"
            if not h.dead:
                return [f"{op.line()}: stuck, waiting for ever for something that never comes"]
            return []
        if task.cancelled():
            op.reason = "cancelled"
            return []
        error = task.exception()
        if error is None:
            op.answer = task.result()
            return []
        if isinstance(error, grpc.aio.AioRpcError):
            op.reason = reason_of(error) or error.code().name
            if op.reason == "INTERNAL":
                return [f"{op.line()}: answered INTERNAL ({error.details()})"]
            return []
        op.reason = "INTERNAL"
        return [f"{op.line()}: raised {type(error).__name__}: {error}"]
