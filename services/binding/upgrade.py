"""Binding views kept in the layout before one hash per person, converted once.

Before, a person's views in a province were up to seven keys: his active set
(`bind:{P}:binder-active:<pid>`), his histories as binder and as beneficiary (`…:binder:<pid>`,
`…:bene:<pid>`, sorted sets scored by the creation time), one pair key per active binding
(`…:pair:<binder>:<beneficiary>`), his payer list (`…:payers:<pid>`) and its version
(`…:payers-v:<pid>`). The binding service converts them into his hash (store.Keys.person) at its
start, before it serves: one script per person and province, on that province's slot, which
writes the hash and deletes the old keys together, so a conversion cut off anywhere is taken up
again by the next start. Once a start has found nothing left to convert it marks the database
(`bind:layout`), and later starts read that mark only. Records kept in named form are read as
they are (domain.record_fields); they are not rewritten.

Stop every replica of the binding service of the earlier layout before a replica of this one
starts: the earlier one would go on writing keys that no one reads.
"""

from __future__ import annotations

import logging
from typing import cast

import orjson
import redis.asyncio as aioredis

from services.binding.domain import record_fields
from services.binding.store import Keys, province_tag
from services.binding.store import script as lua
from services.common.redisdb import get_many

log = logging.getLogger(__name__)
LAYOUT_KEY = "bind:layout"
LAYOUT = "person-hash"


def _old(province: str, part: str, pid: str) -> str:
    return f"{province_tag(province)}:{part}:{pid}"


async def convert(redis: aioredis.Redis) -> int:
    """Convert every person's views kept in the earlier layout; how many were converted. Reads
    only the mark once a start has found nothing left to convert."""
    if await redis.get(LAYOUT_KEY) == LAYOUT:
        return 0
    script = redis.register_script(lua("convert"))
    people: set[tuple[str, str]] = set()
    for part in ("binder", "bene"):
        async for key in redis.scan_iter(match=f"bind:{{*}}:{part}:*", count=1000, _type="zset"):
            tag, _, pid = str(key).split(":", 3)[1:]
            people.add((tag.strip("{}"), pid))
    for province, pid in sorted(people):
        made = cast(list[str], await redis.zrange(_old(province, "binder", pid), 0, -1))
        kept = await get_many(redis, [Keys.record(i) for i in made])
        beneficiaries = sorted({
            str(record_fields(i, orjson.loads(raw))["beneficiary_id"])
            for i, raw in zip(made, kept, strict=True) if raw is not None
        })  # fmt: skip
        keys = [Keys.person(province, pid)] + [
            _old(province, part, pid)
            for part in ("binder-active", "binder", "bene", "payers", "payers-v")
        ] + [_old(province, "pair", f"{pid}:{b}") for b in beneficiaries]  # fmt: skip
        await script(keys=keys, args=beneficiaries)
    await redis.set(LAYOUT_KEY, LAYOUT)
    if people:
        log.info("binding views converted to one hash per person",
                    extra={"fields": {"views": len(people)}})  # fmt: skip
    return len(people)
