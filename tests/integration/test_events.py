"""The account-event stream: status and region changes reach `events:account` exactly as made."""

import asyncio
import datetime as dt

from gongji.account.v1 import account_pb2 as pb
from services.account.events import Relay, pending_key
from services.account.store import outbox_key
from services.common.account_events import STREAM as EVENTS_STREAM
from tests.integration.accounts import open_account, rid, withdraw


async def events_of(redis, pid: str) -> list[dict[str, str]]:
    """This person's events, repeats dropped by event_id as every consumer must (two relays
    may publish one outbox entry twice)."""
    seen: dict[str, dict[str, str]] = {}
    for _, f in await redis.xrange(EVENTS_STREAM):
        if f["person_id"] == pid:
            seen.setdefault(f["event_id"], f)
    return list(seen.values())


async def test_changes_are_published_in_order_with_stable_ids(account, redis):  # rule B12 feed
    pid = await open_account(account, 100)
    await account.SuspendAccount(
        pb.SuspendAccountRequest(person_id=pid, reason="x", request_id=rid())
    )
    await account.ResumeAccount(pb.ResumeAccountRequest(person_id=pid, request_id=rid()))
    await account.TransferAccount(
        pb.TransferAccountRequest(person_id=pid, to_region_code="430600", request_id=rid())
    )
    await withdraw(account, pid)
    events = await events_of(redis, pid)
    assert [(e["type"], e["status"], e["region_code"]) for e in events] == [
        ("OPENED", "1", "430102"),
        ("SUSPENDED", "2", "430102"),
        ("RESUMED", "1", "430102"),
        ("REGION_CHANGED", "1", "430600"),
        ("STOPPED", "1", "430600"),
        ("CLOSED", "3", "430600"),
    ]
    assert len({e["event_id"] for e in events}) == 6
    assert not await redis.exists(outbox_key(pid))  # deleted with its last entry


async def test_an_event_left_in_an_outbox_is_published_by_the_relay_loop(account, redis):
    """A crash between the change and its relay leaves the event in the outbox, marked."""
    pid = await open_account(account)
    relay = Relay(redis, interval_s=0.05)
    await relay.mark(pid)
    await redis.xadd(outbox_key(pid), {"type": "CLOSED", "person_id": pid, "status": "3",
                                       "region_code": "430102", "insurance_type": "1",
                                       "at_ms": "0"})  # fmt: skip
    loop = asyncio.create_task(relay.run())
    try:
        for _ in range(250):  # published, and the mark taken off after
            published = len(await events_of(redis, pid)) == 2
            if published and await redis.zscore(pending_key(pid), pid) is None:
                break
            await asyncio.sleep(0.02)
    finally:
        loop.cancel()
        await asyncio.wait([loop], timeout=5)
    assert loop.cancelled()
    assert [e["type"] for e in await events_of(redis, pid)] == ["OPENED", "CLOSED"]
    assert await redis.zscore(pending_key(pid), pid) is None


async def test_a_start_reads_only_the_outboxes_still_pending(tmp_path):
    """Growth bounded: with many accounts whose outboxes are empty, the relay's start reads the
    pending index and the one outbox it names, and scans nothing (rule B12 feed)."""
    from services.account.store import AccountStore
    from services.common.ids import make_person_id
    from services.common.redisdb import EmbeddedRedis, connect, free_port

    server = EmbeddedRedis(tmp_path / "redis", free_port(), fsync="no").start()
    redis = connect(server.url)
    try:
        store, relay = AccountStore(redis), Relay(redis, interval_s=0.05)
        people = [make_person_id("430102", dt.date(1980, 1, 1 + n // 1000), n % 1000)
                  for n in range(1_500)]  # fmt: skip
        for pid in people:
            await store.open(pid, "x", 1, "430102", "", "")
            await relay.relay(pid)  # published, its outbox gone with its last entry
        assert not await redis.exists(*(outbox_key(p) for p in people))
        pending = people[7]
        await relay.mark(pending)
        await redis.xadd(outbox_key(pending), {"type": "CLOSED", "person_id": pending,
                                               "status": "3", "region_code": "430102",
                                               "insurance_type": "1", "at_ms": "0"})  # fmt: skip
        await redis.config_resetstat()
        loop = asyncio.create_task(relay.run())
        for _ in range(100):
            if await redis.zscore(pending_key(pending), pending) is None:
                break
            await asyncio.sleep(0.02)
        loop.cancel()
        await asyncio.wait([loop], timeout=5)
        stats = await redis.info("commandstats")
        assert "cmdstat_scan" not in stats and "cmdstat_keys" not in stats
        assert stats["cmdstat_xrange"]["calls"] <= 2  # the pending outbox: its entry, then empty
        assert [e["type"] for e in await events_of(redis, pending)][-1] == "CLOSED"
    finally:
        await redis.aclose()
        server.stop()
