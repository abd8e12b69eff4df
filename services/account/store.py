"""Every Redis key and Lua script of the account service.

All keys of one account share the hash tag `{<person_id>}`, so each script runs on one shard
(also under Redis Cluster) and changes balance, holds, ledger, idempotency record and event
outbox of that account atomically. The scripts live in `lua/`; each is the shared prelude
(`lua/prelude.lua`) followed by its own body.
"""

from __future__ import annotations

import json
import pathlib
import secrets
from typing import Any

import redis.asyncio as aioredis

from services.account.domain import Account, Entry, Hold
from services.common.errors import DomainError

_LUA = pathlib.Path(__file__).with_name("lua")
EVENTS_STREAM = "events:account"
OUTBOX_PENDING = "acct:outbox-pending"


def account_key(pid: str) -> str:
    return f"acct:{{{pid}}}"


def account_keys(pid: str, idem: str = "") -> list[str]:
    """KEYS of every account script, in the order prelude.lua names them."""
    a = account_key(pid)
    parts = ("ledger", "eidx", "holds", "hexp", "refunds", "policies", "outbox")
    return [a, *(f"{a}:{p}" for p in parts), f"{a}:idem:{idem}" if idem else f"{a}:idem"]


def outbox_key(pid: str) -> str:
    return f"{account_key(pid)}:outbox"


def new_entry_id() -> str:
    return "e" + secrets.token_hex(12)


class AccountStore:
    def __init__(self, redis: aioredis.Redis, hold_ttl_s: int) -> None:
        self.redis = redis
        self.hold_ttl_ms = hold_ttl_s * 1000
        prelude = (_LUA / "prelude.lua").read_text()
        self._scripts = {
            path.stem: redis.register_script(prelude + "\n" + path.read_text())
            for path in sorted(_LUA.glob("*.lua"))
            if path.stem != "prelude"
        }

    async def _run(
        self, script: str, pid: str, *args: str | int, fp: str = "", idem: str = ""
    ) -> dict[str, Any]:
        raw = await self._scripts[script](keys=account_keys(pid, idem), args=[fp, *args])
        result: dict[str, Any] = json.loads(raw)
        if "error" in result:
            raise DomainError(result["error"], result["message"])
        return result

    # -- accounts -------------------------------------------------------------------------
    async def open(
        self, pid: str, name: str, insurance_type: int, region: str, fp: str, idem: str
    ) -> Account:
        d = await self._run("open", pid, pid, name, insurance_type, region, fp=fp, idem=idem)
        return Account.from_script(d)

    async def get(self, pid: str) -> Account:
        return Account.from_script(await self._run("get", pid))

    async def batch_get(self, pids: list[str]) -> list[Account]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for pid in pids:
                await self._scripts["get"](keys=account_keys(pid), args=[""], client=pipe)
            raws = await pipe.execute()
        found = (json.loads(raw) for raw in raws)
        return [Account.from_script(d) for d in found if "error" not in d]

    async def set_status(self, pid: str, status: int, reason: str, fp: str, idem: str) -> Account:
        return Account.from_script(
            await self._run("set_status", pid, status, reason, fp=fp, idem=idem)
        )

    async def move(self, pid: str, region: str, fp: str, idem: str) -> Account:
        return Account.from_script(await self._run("move", pid, region, fp=fp, idem=idem))

    async def close(
        self, pid: str, status: int, kind: int, to: str, fence: int, fp: str, idem: str
    ) -> tuple[Entry | None, Account]:
        """Pay out the whole balance to `to` and close (withdrawal, transfer out)."""
        d = await self._run("close", pid, status, kind, to, fence, new_entry_id(), fp=fp, idem=idem)
        entry = Entry.from_script(d["entry"]) if d["entry"] else None
        return entry, Account.from_script(d["account"])

    # -- money in and out -----------------------------------------------------------------
    async def credit(
        self, pid: str, amount: int, kind: int, memo: str, fp: str, idem: str
    ) -> Entry:
        d = await self._run("credit", pid, amount, kind, memo, new_entry_id(), fp=fp, idem=idem)
        return Entry.from_script(d)

    async def purchase(
        self, pid: str, amount: int, ratio: int, insurer: str, policy_no: str, fence: int,
        fp: str, idem: str,
    ) -> Entry:  # fmt: skip
        d = await self._run(
            "purchase", pid, amount, ratio, insurer, policy_no, fence, new_entry_id(),
            fp=fp, idem=idem,
        )  # fmt: skip
        return Entry.from_script(d)

    async def cancel_policy(self, pid: str, policy_no: str, fp: str, idem: str) -> Entry:
        d = await self._run(
            "cancel_policy", pid, policy_no, new_entry_id(), new_entry_id(), fp=fp, idem=idem
        )
        return Entry.from_script(d)

    async def refund(self, pid: str, refund_id: str, entry_id: str, reference: str) -> Entry:
        d = await self._run(
            "refund", pid, refund_id, entry_id, new_entry_id(), reference, new_entry_id()
        )
        return Entry.from_script(d)

    # -- holds ----------------------------------------------------------------------------
    async def place_hold(
        self, pid: str, hold_id: str, amount: int, fence: int, kind: int, reference: str
    ) -> Hold:
        d = await self._run(
            "place_hold", pid, hold_id, amount, fence, kind, reference, self.hold_ttl_ms
        )
        return Hold.from_script(d)

    async def unplace_hold(self, pid: str, hold_id: str) -> None:
        await self._run("unplace_hold", pid, hold_id)

    async def commit_hold(self, pid: str, hold_id: str) -> Entry:
        return Entry.from_script(await self._run("commit_hold", pid, hold_id, new_entry_id()))

    async def void_hold(self, pid: str, hold_id: str) -> Hold:
        return Hold.from_script(await self._run("void_hold", pid, hold_id))

    # -- reads ----------------------------------------------------------------------------
    async def entries(
        self, pid: str, page_size: int, before: int | None
    ) -> tuple[list[Entry], int]:
        """Entries newest first, below sequence number `before`; and the next `before` (0 = end)."""
        keys = account_keys(pid)
        if not await self.redis.exists(keys[0]):
            raise DomainError("ACCOUNT_NOT_FOUND", "no such account")
        total = int(await self.redis.llen(keys[1]))
        top = total if before is None else min(before, total)
        start = max(0, top - page_size)
        raws = await self.redis.lrange(keys[1], start, top - 1) if top > 0 else []
        return [Entry.from_script(json.loads(r)) for r in reversed(raws)], start
