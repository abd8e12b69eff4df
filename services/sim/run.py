"""One run of the simulator: a seed, a number of operations, one Redis or a Redis Cluster.

The run opens everyone's account, then plays rounds until the operations are spent: the clock
moves on (minutes, hours, days; to the last evening of a month, when the month-end job runs),
a few operations start together (and now and then a background pass), the scheduler runs them
with its faults, each answer is judged against the model, and the calls left without an answer
are taken up again as their callers would. Every `check_every` operations, and at the end, a
checkpoint (services.sim.checks) brings the world to rest and compares it. The run stops at the
first checkpoint that finds anything wrong.

Everything follows from the seed: the same seed gives the same operations, the same schedule,
the same answers, and the same digest of the whole trace.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import hashlib
import random

import redis.asyncio as aioredis

from services.common import policy as policies
from services.common.clock import BEIJING
from services.common.redisdb import connect
from services.sim import checks
from services.sim.clock import START, SimClock
from services.sim.leases import Leases
from services.sim.model import Model
from services.sim.ops import Op, World
from services.sim.ops_payments import Premium, Settle
from services.sim.ops_premiums import MonthEnd
from services.sim.population import populate
from services.sim.rounds import Rounds
from services.sim.rules import premium_id
from services.sim.scheduler import FaultRates, Scheduler
from services.sim.stack import POLICY_FILE, RECOVERY_AFTER_MS, build, world
from services.sim.workload import Workload

CONCURRENCY = (1, 1, 2, 2, 3, 3, 4, 6)
# What a bill taken up again days later may be answered though its first attempt was made.
_LATE = frozenset({"IDEMPOTENCY_CONFLICT", "INVALID_DATE"})


@dataclasses.dataclass(frozen=True)
class Profile:
    """What kind of run a seed makes: how many households, how often a round is one family's
    at once (a burst), how much more often than the usual rates faults strike."""

    households: tuple[int, int]
    bursts: int  # one round in this many is a burst
    storm: int


PROFILES = (
    Profile((3, 6), 6, 1),  # calm: many families, the usual faults
    Profile((3, 6), 6, 2),
    Profile((2, 3), 3, 4),  # hot: few families, often all at once, faults four times as often
    Profile((1, 2), 2, 8),  # a storm over one or two families
)


@dataclasses.dataclass
class Result:
    seed: int
    cluster: bool
    ops: int
    faults: int
    violations: list[str]
    digest: str
    step: int = 0  # the operation after which the checkpoint found a violation
    last: list[str] = dataclasses.field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations

    def summary(self) -> str:
        return (
            f"{self.ops} operations, {self.faults} faults injected, "
            f"{len(self.violations)} violations, trace {self.digest}"
        )


class Simulation:
    def __init__(
        self,
        seed: int,
        steps: int,
        url: str,
        mode: str = "single",
        rates: FaultRates | None = None,
        check_every: int = 250,
        audit_every: int = 4,
    ) -> None:
        self.seed, self.steps, self.url, self.mode = seed, steps, url, mode
        self.rng = random.Random(seed)
        self.clock = SimClock(START + dt.timedelta(days=self.rng.randrange(730)))
        self.profile = self.rng.choice(PROFILES)
        self.rates = rates or FaultRates().scaled(self.profile.storm)
        self.check_every, self.audit_every = check_every, audit_every
        self.model = Model(policies.load(POLICY_FILE))
        self.ops, self.checks = 0, 0
        self.unanswered: list[Op] = []  # given up on: looked up at the next checkpoint
        self.next: list[Op] = []  # taken up again in the next round
        self.last: collections.deque[str] = collections.deque(maxlen=25)
        self.trace = hashlib.sha256()
        self.violations: list[str] = []
        self.month_ends: set[dt.date] = set()

    async def run(self) -> Result:
        admin = connect(self.url, mode=self.mode)
        await admin.flushall()
        await admin.script_flush()  # every script loaded again, as into a Redis just started
        leases = Leases(admin, self.clock, RECOVERY_AFTER_MS, self._recover_now)
        self.sched = Scheduler(self.seed, self.clock, self.rates, leases)
        with world(self.sched, self.clock, self.seed):
            self.stack = await build(self.sched, self.clock, self.url, self.mode)
            try:
                await self._play(admin)
            finally:
                await self.stack.close()
                await admin.aclose()
        self.trace.update(self.sched.trace.digest())
        return Result(
            self.seed,
            self.mode == "cluster",
            self.ops,
            sum(self.sched.injected.values()),
            self.violations,
            self.trace.hexdigest()[:16],
            self.ops if self.violations else 0,
            list(self.last),
        )

    async def _play(self, admin: aioredis.Redis) -> None:
        people = populate(self.rng, self.rng.randint(*self.profile.households))
        self.world = World(self.rng, people, self.model, self.clock.today())
        self.work = Workload(
            self.world,
            self.clock.today,
            lambda: self.clock.ms,
            sorted(self.stack.jobs),
            {n: s for n, (s, _) in self.stack.jobs.items()},
        )
        self.rounds = Rounds(self.sched, self.stack, self.clock)
        self.ask = checks.asker(self.stack, self.clock)
        opening = self.work.opening()
        for first in range(0, len(opening), 4):
            await self._round(opening[first : first + 4])
        await self._hostile_fences(admin)
        checked = self.ops
        while self.ops < self.steps and not self.violations:
            ops = self._time_passes()
            self.world.today = self.clock.today()
            if self.rng.randrange(self.profile.bursts):
                ops += [self.work.new() for _ in range(self.rng.choice(CONCURRENCY))]
            else:
                ops += self.work.burst()
            ops += self.next
            self.next = []
            if not self.rng.randrange(7):
                ops.append(self.work.background())
            await self._round(ops)
            if self.ops - checked >= self.check_every:
                checked = self.ops
                await self._checkpoint()
        if not self.violations:
            await self._checkpoint(audit=True)

    async def _hostile_fences(self, admin: aioredis.Redis) -> None:
        """Every account starts with a fencing token just below 2^53 (a limit: as if locked
        that often), where a Lua double would stop counting."""
        for pid in sorted(self.model.accounts):
            near = 2**53 - self.rng.randint(1, 3)
            await admin.hset(f"acct:{{{pid}}}", "fence", str(near))

    # -- a round ----------------------------------------------------------------------------
    async def _round(self, ops: list[Op], faulty: bool = True) -> list[Op]:
        self.world.today = self.clock.today()
        found, ops = await self.rounds.run(ops, faulty)
        self.violations += found
        exact = self._exact(ops) if faulty else set()
        # Whom two operations of the round touched: known before any is judged, since the
        # order they acted in is not (a bill may draw on a binding made beside it).
        self._shared(ops)
        left = []
        for op in ops:
            self.ops += 1
            self._record(op)
            if op.unknown or op.again:
                left.append(op)
                self.model.uncertain |= op.touches if op.unknown else frozenset()
                continue
            self.violations += op.kind.judge(self.model, op, op.n in exact)
            if isinstance(op.kind, Settle) and op.retries and op.reason in _LATE:
                # taken up after midnight, the bill of its unset date is another bill (S8); or
                # its date is out of the window by now: its first attempt may have been made
                self.unanswered.append(op)
                self.model.uncertain |= op.touches
            if isinstance(op.kind, MonthEnd):
                for payment_id in op.kind.probes(self.model, op):
                    await checks.premium_probe(self.ask, self.model, payment_id)
        touched = {p for op in ops for p in op.touches}
        self.model.closed_empty(touched)
        self.violations += self.model.overdrawn(touched - self.model.uncertain)
        self.violations += self.model.broken + self.sched.fences.taken()
        self.model.broken = []
        if faulty:
            for op in left:
                follow = (
                    self.work.unanswered(op)
                    if op.unknown
                    else self.work.numbered(op.kind.repeat(self.world, op))
                )
                if follow is None:
                    self.unanswered.append(op)
                else:
                    self.next.append(follow)
        return left

    def _exact(self, ops: list[Op]) -> set[int]:
        """The operations that ran alone on people the model is sure of: predicted exactly."""
        seen = collections.Counter(p for op in ops for p in op.touches)
        for op in ops:
            op.alone = all(seen[p] == 1 for p in op.touches)
        return {
            op.n
            for op in ops
            if op.touches and op.alone and not op.retries and not op.touches & self.model.uncertain
        }

    def _shared(self, ops: list[Op]) -> None:
        """Whom two operations of the round touched: in what order they acted is unknown."""
        seen = collections.Counter(p for op in ops for p in op.touches)
        self.model.uncertain |= {p for p, n in seen.items() if n > 1}

    def _record(self, op: Op) -> None:
        line = op.line()
        if op.runner is not None and op.runner.faults:
            line += f" [{'; '.join(op.runner.faults)}]"
        self.last.append(line)
        self.trace.update(line.encode() + b"\n")

    def _recover_now(self) -> None:
        """A pause past the recovery window: the recovery pass runs while the runner waits."""
        if "payments-recovered" in self.stack.jobs:
            self.rounds.add(self.work.numbered(self.work.recovery()))

    # -- time ---------------------------------------------------------------------------
    def _time_passes(self) -> list[Op]:
        """The clock moved on (never across a night: calls run by day, far from midnight); at
        a month's last evening, the month-end job."""
        roll = self.rng.randrange(100)
        if roll < 60:
            step = self.rng.randint(1_000, 120_000)
        elif roll < 80:
            step = self.rng.randint(1, 6) * 3_600_000
        else:
            step = (1 if roll < 95 else self.rng.randint(2, 9)) * 86_400_000
        last_day = _last_day(self.clock.today())
        evening = _at(last_day, 20)
        if self.clock.ms + step >= evening and last_day not in self.month_ends:
            self.month_ends.add(last_day)
            self.clock.move_ms(evening)
            return self.work.month_ends(last_day)
        self.clock.advance(step)
        hour = self.clock.now().astimezone(BEIJING).hour
        if hour >= 21 or hour < 7:
            morning = self.clock.today() + dt.timedelta(days=1 if hour >= 21 else 0)
            self.clock.move_ms(_at(morning, 8) + self.rng.randrange(3_600_000))
        return []

    # -- checkpoints --------------------------------------------------------------------
    async def _checkpoint(self, audit: bool = False) -> None:
        self.checks += 1
        await self._settle_unanswered()
        self.model.lapsed(self.clock.ms)
        self.violations += await checks.compare(self.ask, self.model)
        await checks.resync(self.ask, self.model)
        if audit or self.checks % self.audit_every == 0:
            self.violations += await checks.audited(self.url, self.mode)
        self.violations += self.model.broken
        self.model.broken = []

    async def _settle_unanswered(self) -> None:
        """Every call left without an answer answered, as its caller takes it up again (now
        without faults), or looked up; the background loops run until nothing is due."""
        pending, self.next = self.next, []
        for _ in range(6):
            await self._drain()
            if not pending:
                break
            left = await self._round(pending, faulty=False)
            pending = [self.work.numbered(op.kind.repeat(self.world, op)) for op in left]
        self.violations += [f"{op.line()}: never answered" for op in pending]
        for op in self.unanswered:
            if isinstance(op.kind, Settle):
                r = op.request
                self.violations += await checks.settlement_probe(
                    self.ask, self.model, r.institution_id, r.medins_setl_id, op.note["content"]
                )
            elif isinstance(op.kind, Premium):
                await checks.premium_probe(self.ask, self.model, premium_id(op.request.request_id))
        self.unanswered = []

    async def _drain(self) -> None:
        """The clock past the recovery window and every background pass run until it finds
        nothing more to do."""
        busy = sorted(self.stack.jobs)
        for _ in range(6):
            self.clock.advance(RECOVERY_AFTER_MS + 61_000)
            busy = [name for name in busy if await self._pass(name)]
            if not busy:
                return

    async def _pass(self, name: str) -> int:
        _, job = self.stack.jobs[name]
        return int(await job() or 0)


def _last_day(day: dt.date) -> dt.date:
    first_next = (day.replace(day=1) + dt.timedelta(days=32)).replace(day=1)
    return first_next - dt.timedelta(days=1)


def _at(day: dt.date, hour: int) -> int:
    return int(dt.datetime(day.year, day.month, day.day, hour, tzinfo=BEIJING).timestamp() * 1000)
