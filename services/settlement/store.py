"""Every Redis key and script of the settlement service: journals, the recovery queue, the
premium-year claims and the consumption-record indexes.

Every change of a journal is one script that also moves what belongs with it: `begin` claims
the key, writes the PENDING journal and its recovery entry together; `move` changes the status
(compare-and-set, so an owner and a sweeper never both decide), the recovery entry, the indexes
of a settled settlement (S13) and a premium's year claim together. Each script checks before it
writes, so a refused move changes nothing.
"""

from __future__ import annotations

from typing import cast

import redis.asyncio as aioredis

from services.common.enums import LegKind, SettlementStatus
from services.settlement.journal import REVERSED, Journal

RECOVERY = "setl:recovery"

# KEYS: 1 journal, 2 recovery queue, 3 premium-year claim (a settlement passes its journal again)
# ARGV: 1 journal JSON, 2 due ms, 3 payment id, 4 '1' when KEYS[3] is a claim to take
# Returns '' when begun, 'HELD:<payment id>' when the year is claimed, else the journal there.
_BEGIN = """
if ARGV[4] == '1' then
  local holder = redis.call('GET', KEYS[3])
  if holder then return 'HELD:' .. holder end
end
local raw = redis.call('GET', KEYS[1])
if raw then return raw end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
if ARGV[4] == '1' then redis.call('SET', KEYS[3], ARGV[3]) end
return ''
"""
# KEYS: 1 journal, 2 recovery queue, 3 premium-year claim (or the journal again), 4.. indexes
# ARGV: 1 expected status, 2 new journal JSON ('' = forget the journal: nothing was paid),
#       3 payment id, 4 due ms ('0' = finished: off the recovery queue), 5 index score,
#       6 '1' = free the year claim if it is this payment's
# Returns 1 when moved, 0 when the journal is not (or no longer) in the expected status.
_MOVE = """
local raw = redis.call('GET', KEYS[1])
if not raw or raw == 'REVERSED' then return 0 end
if tostring(cjson.decode(raw).status) ~= ARGV[1] then return 0 end
if ARGV[2] == '' then redis.call('DEL', KEYS[1]) else redis.call('SET', KEYS[1], ARGV[2]) end
if ARGV[4] == '0' then
  redis.call('ZREM', KEYS[2], ARGV[3])
else
  redis.call('ZADD', KEYS[2], ARGV[4], ARGV[3])
end
if ARGV[6] == '1' and redis.call('GET', KEYS[3]) == ARGV[3] then redis.call('DEL', KEYS[3]) end
for i = 4, #KEYS do redis.call('ZADD', KEYS[i], ARGV[5], ARGV[3]) end
return 1
"""
# KEYS: 1 journal. A key that never arrived gets the tombstone (S10); else its journal.
_REVERSE = """
local raw = redis.call('GET', KEYS[1])
if raw then return raw end
redis.call('SET', KEYS[1], 'REVERSED')
return ''
"""
# KEYS: 1 recovery queue; ARGV: 1 now ms, 2 lease ms, 3 how many. Takes the entries that are
# due and pushes each back by the lease: a sweeper that dies leaves them due again, and one
# that fails on an entry does not see it again before the lease is over (no starvation).
_CLAIM_DUE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])
for _, id in ipairs(due) do redis.call('ZADD', KEYS[1], ARGV[1] + ARGV[2], id) end
return due
"""


def journal_key(payment_id: str) -> str:
    return f"setl:j:{payment_id}"


def year_key(beneficiary: str, year: int) -> str:
    return f"setl:premium:{beneficiary}:{year}"


def index_key(by: str, pid: str) -> str:
    return f"setl:by-{by}:{pid}"


def parse(raw: str | None) -> Journal | str | None:
    """A journal, the tombstone REVERSED, or None."""
    if not raw:
        return None
    return REVERSED if raw == REVERSED else Journal.from_json(raw)


class SettlementStore:
    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis
        self._begin = redis.register_script(_BEGIN)
        self._move = redis.register_script(_MOVE)
        self._reverse = redis.register_script(_REVERSE)
        self._claim_due = redis.register_script(_CLAIM_DUE)

    def _claim_of(self, j: Journal) -> str:
        return year_key(j.premium.beneficiary_id, j.premium.year) if j.premium else ""

    async def begin(self, j: Journal) -> Journal | str | None:
        """Claim the key and write the PENDING journal with its recovery entry, all at once.
        None when begun; else what holds the key: a journal, REVERSED, or `HELD:<payment id>`
        (another payment of the premium's year)."""
        claim = self._claim_of(j)
        keys = [journal_key(j.payment_id), RECOVERY, claim or journal_key(j.payment_id)]
        args: list[str | int] = [j.to_json(), j.due_ms, j.payment_id, int(bool(claim))]
        found = cast(str, await self._begin(keys=keys, args=args))
        if found.startswith("HELD:"):
            return found
        return parse(found)

    async def move(self, before: Journal, after: Journal | None, due_ms: int = 0) -> bool:
        """`before` -> `after` if the journal still reads `before.status`; `after` None forgets
        it. Off the recovery queue unless `due_ms`; a SETTLED settlement enters its indexes."""
        claim = self._claim_of(before)
        keys = [journal_key(before.payment_id), RECOVERY, claim or journal_key(before.payment_id)]
        score = 0
        if after and after.bill and after.status == SettlementStatus.SETTLED:
            keys += self._index_keys(after)
            score = after.settled_ms
        ended = after is None or after.status == SettlementStatus.ABORTED
        args: list[str | int] = [
            int(before.status), after.to_json() if after else "", before.payment_id, due_ms,
            score, int(bool(claim) and ended),
        ]  # fmt: skip
        return bool(await self._move(keys=keys, args=args))

    def _index_keys(self, j: Journal) -> list[str]:
        """Consumption records (S13): by patient, and by each family payer."""
        payers = {leg.payer_id for leg in j.legs if leg.kind == LegKind.FAMILY_AID}
        return [index_key("patient", j.patient_id), *(index_key("payer", p) for p in payers)]

    async def reverse(self, journal_id: str) -> Journal | str | None:
        """Tombstone a key that never arrived (None); else what it holds."""
        return parse(cast(str, await self._reverse(keys=[journal_key(journal_id)])))

    async def load(self, payment_id: str) -> Journal | str | None:
        return parse(cast(str | None, await self.redis.get(journal_key(payment_id))))

    async def forget_due(self, payment_id: str) -> None:
        """Off the recovery queue: for an id whose journal has ended or is gone."""
        await self.redis.zrem(RECOVERY, payment_id)

    async def claim_due(self, now_ms: int, lease_ms: int, limit: int = 100) -> list[str]:
        return cast(
            list[str], await self._claim_due(keys=[RECOVERY], args=[now_ms, lease_ms, limit])
        )

    async def listed(
        self, by: str, pid: str, start_ms: int, end_ms: int, offset: int, size: int
    ) -> list[str]:
        """Settlement ids newest first with settled_at in [start, end)."""
        return cast(
            list[str],
            await self.redis.zrevrangebyscore(
                index_key(by, pid), f"({end_ms}", start_ms, offset, size
            ),
        )

    async def load_many(self, payment_ids: list[str]) -> list[Journal]:
        if not payment_ids:
            return []
        raws = await self.redis.mget([journal_key(p) for p in payment_ids])
        return [j for j in (parse(cast(str | None, r)) for r in raws) if isinstance(j, Journal)]
