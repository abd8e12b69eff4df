"""What the passing of time does to a runner that stops, moved by command.

Redis keeps its own clock, and leases are long enough that none runs out by itself in a run.
When the seed pauses a runner past its lease, or crashes it, the time that would pass is applied
to what it holds instead: each lock it holds gets a lease end in the past (the lock stays, as a
lapsed one does, for the next taker to take over and resolve: services.account.locks), and a
crashed runner's unanswered request claims lapse (services.common.idempotency). A pause past the
recovery window moves the simulated clock past it too, so the recovery sweep finds the
runner's marks due while it is stopped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import redis.asyncio as aioredis

from services.sim.clock import SimClock
from services.sim.scheduler import Faults, Runner

log = logging.getLogger(__name__)

# KEYS[1] an account; ARGV the owner tokens of a runner. Its lock, if one of them holds it, with
# its lease ended (lock field: `<token> <what> <lease end ms>`, services/account/lua/lib.lua).
_LAPSE_LOCK = """
local raw = redis.call('HGET', KEYS[1], 'lock')
if not raw or raw == '' then return 0 end
local token, what = string.match(raw, '^(%S+) (%S+) %d+$')
for _, t in ipairs(ARGV) do
  if t == token then
    redis.call('HSET', KEYS[1], 'lock', token .. ' ' .. what .. ' 1')
    return 1
  end
end
return 0
"""
# KEYS[1] a request's record; ARGV the claim tokens of a runner. Gone if it is one of its claims
# still unanswered, as its lease running out would leave it.
_LAPSE_CLAIM = """
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
local r = cjson.decode(raw)
if r.response then return 0 end
for _, t in ipairs(ARGV) do
  if t == r.token then return redis.call('DEL', KEYS[1]) end
end
return 0
"""


class Leases(Faults):
    def __init__(
        self,
        admin: aioredis.Redis,
        clock: SimClock,
        recovery_after_ms: int,
        recover: Callable[[], None],
    ) -> None:
        """`admin`: a client outside the scheduler; `recover`: start a recovery pass now."""
        self.admin, self.clock, self.recovery_after_ms = admin, clock, recovery_after_ms
        self.recover = recover
        self._lock = admin.register_script(_LAPSE_LOCK)
        self._claim = admin.register_script(_LAPSE_CLAIM)
        self.lapsed = 0  # locks whose lease was ended: how often a pause or crash took hold

    async def paused(self, runner: Runner, past_recovery: bool) -> None:
        await self._lapse_locks(runner)
        if past_recovery:
            self.clock.advance(self.recovery_after_ms + 1)
            self.recover()

    async def crashed(self, runner: Runner) -> None:
        await self._lapse_locks(runner)
        tokens = sorted(runner.tokens)
        for key in sorted(k for k in runner.keys if ":req:" in k):
            await self._claim(keys=[key], args=tokens)

    async def _lapse_locks(self, runner: Runner) -> None:
        tokens = sorted(runner.tokens)
        if not tokens:
            return
        for key in sorted(k for k in runner.keys if ":req:" not in k):
            self.lapsed += int(await self._lock(keys=[key], args=tokens))
