"""The account-event relay: account outboxes -> the `events:account` stream.

Each script that changes an account's status or region appends an event to that account's own
outbox in the same atomic step. Before running such a script the service marks the account in a
pending index (`acct:{outbox:<n>}:pending`, one of 16 spread over the slots of a Redis Cluster)
with a number from that index's counter; after it, the service relays that outbox at once. A
background loop relays every account still marked, so an event whose relay was cut short (crash,
Redis blip) is published later. Every change that emits is marked first (the servicer's
`_announcing`), so the loop, at start as ever after, reads only what is pending: a start costs
the same with a thousand accounts or ten million. An outbox emptied by its relay is deleted with
its last entry, so an account keeps no stream between its events.

An event may be published twice (a crash between XADD and XDEL); each carries a stable
`event_id` (`<person_id>:<the account's event number>`) so consumers drop the repeat.
"""

from __future__ import annotations

import logging
from typing import Any, cast

import redis.asyncio as aioredis

from services.account.store import outbox_key
from services.common import account_events
from services.common.intents import Intents
from services.common.redisdb import spread

log = logging.getLogger(__name__)

BUCKETS = 16


def pending_bucket(n: int) -> str:
    """The n-th part of the pending-outbox index, each on a slot of its own."""
    return f"acct:{{outbox:{n}}}:pending"


def _counter(n: int) -> str:
    """The numbers the marks of the n-th part are taken from (its slot)."""
    return f"acct:{{outbox:{n}}}:seq"


def pending_key(pid: str) -> str:
    """The part of the pending index that marks this account's outbox."""
    return pending_bucket(spread(pid, BUCKETS))


# KEYS[1] the outbox; ARGV: its published entry ids. Takes them off, and the stream with the
# last of them (a script, so an event appended meanwhile keeps the stream).
_PUBLISHED = """
redis.call('XDEL', KEYS[1], unpack(ARGV))
if redis.call('XLEN', KEYS[1]) == 0 then redis.call('DEL', KEYS[1]) end
return 0
"""


class Relay:
    """The outboxes marked as intents (services.common.intents), numbered by their part's
    counter: a relay clears a mark only up to the number it began after, so a change marked
    again meanwhile is relayed again."""

    def __init__(self, redis: aioredis.Redis, interval_s: float = 1.0) -> None:
        self.redis = redis
        self.pending = Intents(
            redis, [pending_bucket(n) for n in range(BUCKETS)], self._finish,
            label="account-event-published", interval_s=interval_s,
            pending_label="account-events",
        )  # fmt: skip
        self._published = redis.register_script(_PUBLISHED)

    async def mark(self, pid: str) -> None:
        await self.pending.mark_numbered(pid, _counter(spread(pid, BUCKETS)))

    async def relay(self, pid: str) -> int:
        """Publish this account's outbox; returns how many events went out."""
        began = int(await self.redis.get(_counter(spread(pid, BUCKETS))) or 0)
        key, sent = outbox_key(pid), 0
        while True:
            batch = await self.redis.xrange(key, count=100)
            if not batch:
                break
            for entry_id, fields in cast(list[tuple[str, dict[str, str]]], batch):
                number = fields.pop("n", entry_id)  # an event from before numbering: its id
                event: dict[Any, Any] = {
                    **fields,
                    "event_id": account_events.event_id(pid, number),
                }
                await self.redis.xadd(
                    account_events.STREAM, event, maxlen=account_events.STREAM_MAXLEN,
                    approximate=True,
                )  # fmt: skip
                await self._published(keys=[key], args=[entry_id])
                sent += 1
        await self.pending.clear(pid, upto=began)
        return sent

    async def relay_quietly(self, pid: str) -> None:
        """After a change: publish now if we can; the sweep publishes later if we cannot."""
        try:
            await self.relay(pid)
        except Exception:
            log.warning("event relay deferred", exc_info=True)

    async def _finish(self, bucket: str, pid: str) -> int:
        return await self.relay(pid)

    async def run(self) -> None:
        await self.pending.run()
