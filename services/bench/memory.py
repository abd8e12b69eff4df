"""`gongji bench --memory N`: what Redis keeps per account and per settlement.

N families of two spouses are made through the API: two employee accounts, twelve monthly
credits each, and each binding the other (so each account has two bindings, one as binder and
one as beneficiary). Then four settlements per family for the first spouse: the first is more
than his balance, so his own account and his spouse's each pay a leg; the spouse pays the next
three (family aid). Redis `used_memory` (summed over
every node) is read before and after each part, and every key's `MEMORY USAGE` sorts the growth
into what the figures name: the ledger entries themselves, what lasts 7 days (idempotency
markers, request records), the account event stream (trimmed to a fixed length), and
everything else, which is kept for good.
"""

from __future__ import annotations

import asyncio
from typing import Any

import redis

from services.bench import scenarios
from services.bench.scenarios import People, Stubs
from services.common import account_events

_TRIMMED = account_events.STREAM.encode()
MONTHLY_FEN = 10_000
BATCH = 32


def used_memory(nodes: list[redis.Redis]) -> int:
    return sum(int(n.info("memory")["used_memory"]) for n in nodes)


def family(key: bytes) -> str:
    """A key's family: its name without hash tags and without the parts that hold ids
    (`acct:{4401...}:grants` -> `acct:grants`)."""
    parts = key.decode(errors="replace").split(":")
    return ":".join(p for p in parts if not p.startswith("{") and not any(c.isdigit() for c in p))


def key_bytes(nodes: list[redis.Redis]) -> dict[str, int]:
    """Bytes by kind of key: `ledger`, `7-day` (keys with a lifetime), `trimmed` (the account
    event stream, kept to about STREAM_MAXLEN entries whatever the number of accounts), `kept`;
    and the kept bytes by family of key (`kept acct:grants`, ...)."""
    found = {"ledger": 0, "7-day": 0, "trimmed": 0, "kept": 0}
    for node in nodes:
        for key in node.scan_iter(count=1000):
            size = int(node.memory_usage(key, samples=0) or 0)
            if key.endswith(b":ledger"):
                found["ledger"] += size
            elif node.pttl(key) > 0:
                found["7-day"] += size
            elif key == _TRIMMED:
                found["trimmed"] += size
            else:
                found["kept"] += size
                name = f"kept {family(key)}"
                found[name] = found.get(name, 0) + size
    return found


async def _family(s: Stubs, people: People) -> tuple[str, str]:
    first, second = await people.open(s, 1970), await people.open(s, 1972)
    for _ in range(12):
        await asyncio.gather(scenarios.credit(s, first, MONTHLY_FEN),
                             scenarios.credit(s, second, MONTHLY_FEN))  # fmt: skip
    await scenarios.bind(s, first, second, scenarios.SPOUSE)
    await scenarios.bind(s, second, first, scenarios.SPOUSE)
    return first, second


SETTLEMENTS = 4  # per family


async def _settle(s: Stubs, patient: str) -> None:
    await s.settlement.Settle(
        scenarios.bill(patient, 12 * MONTHLY_FEN + 1_000), timeout=scenarios.TIMEOUT_S
    )
    for _ in range(SETTLEMENTS - 1):
        await s.settlement.Settle(scenarios.bill(patient, 1_000), timeout=scenarios.TIMEOUT_S)


async def measure(
    s: Stubs, people: People, nodes: list[redis.Redis], families: int
) -> dict[str, Any]:
    def state() -> tuple[int, dict[str, int]]:
        return used_memory(nodes), key_bytes(nodes)

    begun = state()
    made: list[tuple[str, str]] = []
    while len(made) < families:
        batch = min(BATCH, families - len(made))
        made += await asyncio.gather(*(_family(s, people) for _ in range(batch)))
    accounts = state()
    for i in range(0, families, BATCH):
        await asyncio.gather(*(_settle(s, first) for first, _ in made[i : i + BATCH]))
    settled = state()
    return {
        "families": families,
        "per_account": _per(begun, accounts, 2 * families),
        "per_settlement": _per(accounts, settled, SETTLEMENTS * families),
    }


def _per(
    before: tuple[int, dict[str, int]], after: tuple[int, dict[str, int]], n: int
) -> dict[str, int]:
    """Bytes per item: Redis's own growth, and the growth of the keys by kind."""
    grown = {k: (v - before[1].get(k, 0)) / n for k, v in after[1].items()}
    return {"used_memory": round((after[0] - before[0]) / n)} | {
        k: round(v) for k, v in sorted(grown.items()) if round(v)
    }
