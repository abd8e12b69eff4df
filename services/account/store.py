"""Every Redis key and Lua script of the account service.

All keys of one account share the hash tag `{<person_id>}`, so each single-account script runs
on one shard (also under Redis Cluster) and changes balance, ledger, idempotency marker, lock
and event outbox of that account atomically. The scripts live in `lua/`; each is the enum
constants, the account's FIELDS and PARTS (defined here once, for Python and Lua), the shared
head (`lua/lib.lua`), the payment steps (`lua/payment.lua`) and its own body. Every script
reads and checks before its first write, so a refusal changes nothing.
"""

from __future__ import annotations

import datetime as dt
import pathlib
import secrets
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, cast

import orjson
import redis.asyncio as aioredis

from services.account.contributions import Contribution
from services.account.domain import (
    Account,
    Entry,
    FamilyAidGrant,
    PaidFor,
    Payment,
    Quota,
    Source,
)
from services.common.enums import (
    AccountStatus,
    EntryKind,
    InsuranceType,
    PaymentState,
    PremiumKind,
    QuotaEndReason,
    QuotaStatus,
    lua_constants,
)
from services.common.errors import DomainError
from services.common.redisdb import get_many, hget_many, hget_pairs, run_each

_LUA = pathlib.Path(__file__).with_name("lua")
# The fields of an account's hash that its scripts read (lib.lua `from_fields`, in this order),
# and the suffixes of its other keys (lib.lua `key(a, n)` is the n-th). `holds` and `hexp` are
# kept for the holds made before they were retired.
ACCOUNT_FIELDS = ("person_id", "name", "type", "region", "status", "balance", "held", "seq",
                  "fence", "opened_ms", "closed_to", "payers_v", "stop", "stopped_ms", "kept",
                  "closed_by", "lock", "payers", "events", "reserved", "quotas")  # fmt: skip
ACCOUNT_PARTS = ("ledger", "eidx", "holds", "hexp", "refunds", "policies", "outbox", "grants",
                 "paid-for", "paid-by", "contrib", "funds")  # fmt: skip


def _lua_list(name: str, items: Sequence[str]) -> str:
    return f"local {name} = {{{', '.join(repr(i) for i in items)}}}\n"


_HEAD = (
    lua_constants(
        AccountStatus, InsuranceType, EntryKind, PaymentState, QuotaStatus, QuotaEndReason
    )
    + _lua_list("FIELDS", ACCOUNT_FIELDS)
    + _lua_list("PARTS", [f":{p}" for p in ACCOUNT_PARTS])
    + (_LUA / "lib.lua").read_text()
    + (_LUA / "payment.lua").read_text()
)


def account_key(pid: str) -> str:
    return f"acct:{{{pid}}}"


def account_keys(pid: str) -> list[str]:
    """Every key of one account: its hash, then the parts lib.lua derives from its name."""
    a = account_key(pid)
    return [a, *(f"{a}:{p}" for p in ACCOUNT_PARTS)]


def marker_key(pid: str, marker: str) -> str:
    """Where a single-account script keeps the answer of the call it applied (`method:rid`)."""
    return f"{account_key(pid)}:idem:{marker}"


def payment_key(payment_id: str) -> str:
    """A payment's record: its own hash tag, findable from the payment id alone."""
    return f"acct:pay:{{{payment_id}}}"


def premium_mark(kind: int, year: int) -> str:
    """Where the beneficiary's account marks a premium paid, one per kind and year (A2, N5):
    the year for a resident medical premium (as before kinds), `ltc:<year>` for long-term care."""
    return f"ltc:{year}" if kind == PremiumKind.LONG_TERM_CARE else str(year)


def year_key(pid: str, mark: str) -> str:
    """The patient's premium marked `mark` (premium_mark): which payment paid it (lua/pay.lua)."""
    return f"{account_key(pid)}:premium:{mark}"


def is_final(record: dict[str, Any]) -> bool:
    """A record of a payment made (PAID, CANCELLED) or reversed; not the journal of one being
    made in steps (`phase`: stepwise.py), nor the mark of attempts given up."""
    return "phase" not in record


async def records(redis: aioredis.Redis, payment_ids: Iterable[str]) -> dict[str, str | None]:
    """Each payment's record as it is kept (final, or the journal of a payment being made in
    steps: the record and its journal are one key), in one round trip per slot."""
    wanted = list(dict.fromkeys(payment_ids))
    raws = await get_many(redis, [payment_key(i) for i in wanted])
    return dict(zip(wanted, raws, strict=True))


# A settlement's lists besides its record (payment.lua `list_settlement`, rules N6, N7): its
# institution's day, and the month's clearing when it has a quota share across provinces.
_EPOCH = dt.date(1970, 1, 1)
_BEIJING_MS = 8 * 3600 * 1000
_DAY_MS = 24 * 3600 * 1000


def day_key(institution_id: str, date: str) -> str:
    return f"acct:day:{{{institution_id}}}:{date}"


def clearing_key(month: str) -> str:
    return f"acct:clearing:{{{month}}}"


def beijing_day(ms: int) -> int:
    """The Beijing day of a time (ms), as a number of days since 1970-01-01 (payment.lua's)."""
    return (ms + _BEIJING_MS) // _DAY_MS


def date_of_day(day: int) -> str:
    return (_EPOCH + dt.timedelta(days=day)).isoformat()


def lists_of(institution_id: str, day: int) -> tuple[str, str]:
    """The day list and the month's clearing list a settlement of that Beijing day goes to."""
    date = date_of_day(day)
    return day_key(institution_id, date), clearing_key(date[:7])


def outbox_key(pid: str) -> str:
    return f"{account_key(pid)}:outbox"


def new_entry_id() -> str:
    """An id for an entry this service makes; the script that writes the entry appends its
    place in the ledger (`.<place>`: lib.lua `placed`), so such an entry needs no index."""
    return "e" + secrets.token_hex(12)


def script_names() -> list[str]:
    return sorted(p.stem for p in _LUA.glob("*.lua") if p.stem not in ("lib", "payment"))


class AccountStore:
    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis
        self._scripts = {
            name: redis.register_script(_HEAD + (_LUA / f"{name}.lua").read_text())
            for name in script_names()
        }

    async def call(self, script: str, keys: list[str], args: Sequence[object]) -> Any:
        # int(): redis-py would send an IntEnum as its repr
        plain = [a if isinstance(a, str) else int(cast(int, a)) for a in args]
        result = orjson.loads(await self._scripts[script](keys=keys, args=plain))
        if isinstance(result, dict) and "error" in result:
            raise DomainError(result["error"], result["message"])
        return result

    async def _run(
        self, script: str, pid: str, *args: str | int, fp: str = "", marker: str = ""
    ) -> Any:
        """A single-account script: the account's key, then the call's marker."""
        keys = [account_key(pid), marker_key(pid, marker or "-")]
        return await self.call(script, keys, [fp, *args])

    # -- accounts -------------------------------------------------------------------------
    async def open(
        self, pid: str, name: str, insurance_type: int, region: str, fp: str, marker: str
    ) -> Account:
        d = await self._run("open", pid, pid, name, insurance_type, region, fp=fp, marker=marker)
        return Account.from_script(d)

    async def get(self, pid: str) -> Account:
        return Account.from_script(await self._run("get", pid))

    async def read_fields(self, pid: str) -> list[Any]:
        """The account's FIELDS as a script reads them (a missing one false, as Lua has it),
        without a script: a plain HMGET."""
        found = await self.redis.hmget(account_key(pid), ACCOUNT_FIELDS)
        return [False if v is None else v for v in found]

    async def batch_get(self, pids: list[str]) -> list[Account]:
        calls = [([account_key(pid), marker_key(pid, "-")], [""]) for pid in pids]
        raws = await run_each(self.redis, self._scripts["get"], calls)
        found = (orjson.loads(raw) for raw in raws)
        return [Account.from_script(d) for d in found if "error" not in d]

    async def set_status(self, pid: str, status: int, reason: str, fp: str, marker: str) -> Account:
        d = await self._run("set_status", pid, status, reason, fp=fp, marker=marker)
        return Account.from_script(d)

    async def stop(self, pid: str, reason: int, fp: str, marker: str) -> Account:
        return Account.from_script(await self._run("stop", pid, reason, fp=fp, marker=marker))

    async def change_type(self, pid: str, insurance_type: int, fp: str, marker: str) -> Account:
        d = await self._run("change_type", pid, insurance_type, fp=fp, marker=marker)
        return Account.from_script(d)

    async def move(self, pid: str, region: str, fp: str, marker: str) -> Account:
        return Account.from_script(await self._run("move", pid, region, fp=fp, marker=marker))

    async def close(
        self, pid: str, status: int, kind: int, to: str, fence: str, stop: int | None,
        fp: str, marker: str,
    ) -> tuple[Entry | None, Account]:  # fmt: skip
        """Pay out the whole balance to `to` and close (withdrawal, transfer out). `stop`: the
        StopReason a withdrawal needs first (A4); None for a transfer."""
        needs = "" if stop is None else int(stop)
        d = await self._run(
            "close", pid, status, kind, to, fence, new_entry_id(), needs, fp=fp, marker=marker
        )
        entry = Entry.from_script(d["entry"]) if d["entry"] else None
        return entry, Account.from_script(d["account"])

    # -- money in and out -----------------------------------------------------------------
    async def credit(
        self, pid: str, amount: int, kind: int, memo: str, fp: str, marker: str
    ) -> Entry:
        d = await self._run("credit", pid, amount, kind, memo, new_entry_id(), fp=fp, marker=marker)
        return Entry.from_script(d)

    # -- contributions (A8) -------------------------------------------------------------------
    async def contribute(
        self, pid: str, month: str, base: int, employee: int, employer: int, payer: int,
        region: str, basis_points: int, fp: str, marker: str,
    ) -> Contribution:  # fmt: skip
        d = await self._run(
            "contribute", pid, month, base, employee, employer, payer, region, basis_points,
            new_entry_id(), fp=fp, marker=marker,
        )  # fmt: skip
        return Contribution.from_script(d)

    async def contributions(self, pid: str) -> dict[str, str]:
        """The person's recorded months: month -> the region it was paid in."""
        raw = cast(dict[str, str], await self.redis.hgetall(f"{account_key(pid)}:contrib"))
        return {m: orjson.loads(c)["region_code"] for m, c in raw.items()}

    async def purchase(
        self, pid: str, amount: int, ratio: int, insurer: str, policy_no: str, fence: str,
        year: int, partner: bool, kind: int, fp: str, marker: str,
    ) -> Entry:  # fmt: skip
        d = await self._run(
            "purchase", pid, amount, ratio, insurer, policy_no, fence, new_entry_id(), str(year),
            "1" if partner else "0", kind, fp=fp, marker=marker,
        )  # fmt: skip
        return Entry.from_script(d)

    async def cancel_policy(self, pid: str, policy_no: str, fp: str, marker: str) -> Entry:
        d = await self._run(
            "cancel_policy", pid, policy_no, new_entry_id(), new_entry_id(), fp=fp, marker=marker
        )
        return Entry.from_script(d)

    # -- family payments ------------------------------------------------------------------
    async def pay(
        self, payment_id: str, kind: int, patient: str, sources: Sequence[Source], amount: int,
        on_date: str, quote: bool, fp: str, details: str = "", premium: str = "",
        order_version: int | None = None, institution_id: str = "",
    ) -> Payment:  # fmt: skip
        """The whole payment and its record in one script (lua/pay.lua). `premium`: a
        premium's mark (its year, or `ltc:` and its year); `order_version`: the version of the
        patient's payer order the sources come from, StaleOrder if it has changed since; a
        settlement's `institution_id` names the day list it goes to."""
        version = "" if order_version is None else order_version
        args: list[str | int] = [
            fp, payment_id, kind, amount, on_date, int(quote), version, details, premium,
            institution_id,
        ]  # fmt: skip
        keys = [payment_key(payment_id), account_key(patient)]
        for s in sources:
            keys.append(account_key(s.person_id))
            args += [s.person_id, s.binding_id, s.quota_id]
        listed = institution_id if not quote else ""

        def build(lists: list[str], day: str) -> tuple[list[str], list[str | int]]:
            return [keys[0], *lists, *keys[1:]], [*args[:10], day, *args[10:]]

        d = await self._listed("pay", listed, keys[0], build)
        if "stale_order" in d:
            raise StaleOrder(sources_of(d["stale_order"], d.get("quotas")), int(d["version"]))
        return Payment.from_script(d)

    async def _listed(
        self, script: str, institution_id: str, record_key: str,
        build: Callable[[list[str], str], tuple[list[str], list[str | int]]],
    ) -> Any:  # fmt: skip
        """A script that lists a settlement (pay, cancel_payment) in its institution's day
        (`institution_id`; '' = nothing to list): `build(lists, day)` gives its keys and
        arguments with today's lists and Beijing day; if the day has turned by the script's
        clock, it is run once more with the script's day. With nothing to list, the lists are
        the record's key (its slot), unused."""
        day = beijing_day(int(time.time() * 1000))
        for _ in range(2):
            if institution_id:
                keys, args = build(list(lists_of(institution_id, day)), str(day))
            else:
                keys, args = build([record_key, record_key], "")
            d = await self.call(script, keys, args)
            if not (isinstance(d, dict) and d.get("stale_day")):
                return d
            day = int(d["day"])
        raise DomainError("INTERNAL", "the Beijing day kept turning; retry")

    async def payment(self, payment_id: str) -> Payment | None:
        """The payment's final record; None while there is none (or it is being made)."""
        raw = await self.redis.get(payment_key(payment_id))
        found = orjson.loads(raw) if raw else None
        return Payment.from_script(found) if found and is_final(found) else None

    async def cancel_payment(
        self, payment_id: str, reason: str, request_id: str, reversal: bool
    ) -> Payment:
        """Every share refunded and the record CANCELLED, in one script (lua/cancel_payment.lua)."""
        found = await self.payment(payment_id)
        payers = [s.person_id for s in found.shares] if found else []
        record = payment_key(payment_id)

        def build(lists: list[str], day: str) -> tuple[list[str], list[str | int]]:
            keys = [record, *lists, *(account_key(p) for p in payers)]
            return keys, ["", reason, request_id, int(reversal), day]

        listed = found.institution_id if found else ""
        return Payment.from_script(await self._listed("cancel_payment", listed, record, build))

    async def reverse_payment(self, payment_id: str) -> Payment:
        """A payment not made is REVERSED for good; one made is returned as it is."""
        d = await self.call("reverse_payment", [payment_key(payment_id)], ["", payment_id])
        return Payment.from_script(d)

    async def payments(
        self, pid: str, as_payer: bool, start_ms: int, end_ms: int, offset: int, limit: int
    ) -> list[Payment]:
        """The payments of a patient (or those a payer paid family aid in), newest first, with
        their time in [start, end)."""
        index = f"{account_key(pid)}:{'paid-by' if as_payer else 'paid-for'}"
        ids = await self.redis.zrevrangebyscore(index, f"({end_ms}", start_ms, offset, limit)
        if not ids:
            return []
        raws = await get_many(self.redis, [payment_key(str(i)) for i in ids])
        found = (orjson.loads(r) for r in raws if r)
        return [Payment.from_script(d) for d in found if is_final(d)]

    async def grant(
        self, binder: str, beneficiary: str, binding_id: str, start: str, end: str
    ) -> FamilyAidGrant:
        d = await self._run("grant", binder, binding_id, beneficiary, start, end)
        return FamilyAidGrant.from_script(d)

    async def revoke(self, binder: str, binding_id: str) -> FamilyAidGrant:
        return FamilyAidGrant.from_script(await self._run("revoke", binder, binding_id))

    async def set_order(
        self, beneficiary: str, order: Sequence[Source], version: int
    ) -> tuple[list[Source], int]:
        """The beneficiary's order (his quotas, then his payers: sources_of) as given, if its
        version is above the stored one; the order as stored, and its version."""
        payers = [(s.person_id, s.binding_id) for s in order if not s.quota_id]
        quotas = [(s.person_id, s.quota_id) for s in order if s.quota_id]
        d = await self._run("set_order", beneficiary, version, orjson.dumps(payers).decode(),
                            orjson.dumps(quotas).decode())  # fmt: skip
        return sources_of(d["payers"], d["quotas"]), int(d["version"])

    # -- aid quotas (N1-N5): each on its funder's account, under his lock --------------------
    async def open_quota(
        self, funder: str, quota_id: str, relative: str, relationship: int, amount: int,
        max_quotas: int, pending: bool, seq: int, created_ms: int, fence: str,
    ) -> Quota:  # fmt: skip
        d = await self._run("quota_open", funder, quota_id, relative, relationship, amount,
                            max_quotas, int(pending), seq, created_ms, fence)  # fmt: skip
        return Quota.from_script(d)

    async def change_quota(self, funder: str, quota_id: str, amount: int, fence: str) -> Quota:
        return Quota.from_script(await self._run("quota_change", funder, quota_id, amount, fence))

    async def close_quota(
        self, funder: str, quota_id: str, reason: int, only_pending: bool, relative: str,
        relationship: int, seq: int, created_ms: int, fence: str,
    ) -> Quota:  # fmt: skip
        d = await self._run("quota_close", funder, quota_id, reason, int(only_pending), relative,
                            relationship, seq, created_ms, fence)  # fmt: skip
        return Quota.from_script(d)

    async def activate_quota(self, funder: str, quota_id: str, fence: str) -> Quota:
        return Quota.from_script(await self._run("quota_activate", funder, quota_id, fence))

    async def quotas(self, refs: Sequence[tuple[str, str]]) -> list[Quota]:
        """Quotas by (funder, quota id), as kept; one not found is left out."""
        raws = await hget_pairs(self.redis, [(f"{account_key(f)}:funds", q) for f, q in refs])
        return [
            Quota.from_kept(funder, quota_id, orjson.loads(raw))
            for (funder, quota_id), raw in zip(refs, raws, strict=True) if raw
        ]  # fmt: skip

    # -- a day's and a month's settlements (N6, N7) ------------------------------------------
    async def listed(self, key: str, offset: int, limit: int) -> list[str]:
        """A page of a day's (or month's clearing) list: `+id` settled, `-id` cancelled."""
        found = await self.redis.zrange(key, offset, offset + limit - 1)
        return [str(m) for m in found]

    async def redis_ms(self) -> int:
        """The Redis server's clock (ms): the scripts' clock, which decides a day's lists."""
        seconds, micros = await self.redis.time()
        return int(seconds) * 1000 + int(micros) // 1000

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
        return [Entry.from_script(orjson.loads(r)) for r in reversed(raws)], start

    # -- following a ledger (A10) ---------------------------------------------------------
    async def position(self, pid: str) -> int:
        """How many entries the account's ledger holds: the position of its last entry."""
        [found] = await self.positions([pid])
        if found is None:
            raise DomainError("ACCOUNT_NOT_FOUND", "no such account")
        return found

    async def positions(self, pids: Sequence[str]) -> list[int | None]:
        """The position of each account (None: no such account), in one pipelined read."""
        found = await hget_many(self.redis, [account_key(p) for p in pids], "seq")
        return [None if seq is None else int(seq) for seq in found]

    async def entries_after(self, pid: str, after: int, count: int) -> list[Entry]:
        """Up to `count` entries past position `after`, oldest first (the ledger only grows)."""
        ledger = account_keys(pid)[1]
        raws = await self.redis.lrange(ledger, after, after + count - 1)
        return [Entry.from_script(orjson.loads(r)) for r in raws]

    async def paid_for(self, payment_ids: Sequence[str]) -> dict[str, PaidFor]:
        """Whose payment each id is, from its record (for a payment still being made in steps, a
        share is in a payer's ledger a moment before the record is final: its journal, the same
        key, already names the patient and the bill)."""
        found = await records(self.redis, payment_ids)
        kept = {i: orjson.loads(raw) for i, raw in found.items() if raw}
        return {i: PaidFor.from_script(d) for i, d in kept.items() if d.get("phase") != "void"}


class StaleOrder(Exception):
    """The patient's payer order changed since the caller read it: here it is as it is now."""

    def __init__(self, order: list[Source], version: int) -> None:
        super().__init__("the payer order has changed")
        self.order, self.version = order, version


def sources_of(payers: str, quotas: str | None = None) -> list[Source]:
    """A patient's order as his account keeps it (`payers`, `quotas`: JSON lists): his quotas
    oldest first, then his payers in their order (N3, B10)."""
    drawn = [Source(funder, "", quota_id) for funder, quota_id in orjson.loads(quotas or "[]")]
    return drawn + [Source(person_id, binding_id) for person_id, binding_id in orjson.loads(payers)]
