"""The three services as `build(settings, clock)` makes them, in this process, under the
simulator: their Redis clients gated (services.sim.clients), their peer channels in process
(services.sim.calls), their background loops taken apart into passes the simulation runs as
steps of its own instead of on their timers, and every id they draw from the seed."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import pathlib
import random
import secrets
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import redis.asyncio as aioredis

from services.account.events import Relay
from services.account.server import build as build_account
from services.account.stepwise import Stepwise
from services.binding import events as binding_events
from services.binding.events import Lapser
from services.binding.server import BindingServicer
from services.binding.server import build as build_binding
from services.common import channels, redisdb
from services.common.config import Settings
from services.common.server import App
from services.settlement.server import build as build_settlement
from services.sim import clients
from services.sim.calls import LocalChannel, SimServer
from services.sim.clock import SimClock, patched
from services.sim.scheduler import HANDLER, Scheduler

POLICY_FILE = str(pathlib.Path(__file__).with_name("policy.toml"))
RECOVERY_AFTER_MS = 2_000  # simulated: a pause may pass it
LEASE_MS = 60_000  # Redis's real time: no lease runs out by itself in a run
ADDRESSES = {
    "account": "account.sim:1",
    "binding": "binding.sim:1",
    "settlement": "settlement.sim:1",
}
Job = Callable[[], Coroutine[Any, Any, Any]]


@dataclasses.dataclass
class Stack:
    servers: dict[str, SimServer]
    jobs: dict[str, tuple[str, Job]]  # a background pass: its service and its work
    apps: list[App]

    async def close(self) -> None:
        """The clients closed; not the services' own close, which would wait for the work of
        runners that died (a crash leaves it unfinished for good)."""
        for app in self.apps:
            if app.redis is not None:
                await app.redis.aclose()


def settings(service: str, url: str, mode: str) -> Settings:
    return Settings(
        service=service,
        listen_addr=ADDRESSES[service],
        account_addr=ADDRESSES["account"],
        binding_addr=ADDRESSES["binding"],
        settlement_addr=ADDRESSES["settlement"],
        redis_url=url,
        redis_mode=mode,
        recovery_after_ms=RECOVERY_AFTER_MS,
        lock_lease_ms=LEASE_MS,
        policy_file=POLICY_FILE,
        env="test",
        auth=False,
    )


async def build(sched: Scheduler, clock: SimClock, url: str, mode: str) -> Stack:
    made: list[tuple[str, LocalChannel]] = []

    def connect(url: str, pointed: bool = False, mode: str = "single") -> aioredis.Redis:
        return clients.connect(sched, url, mode)

    def peer_channel(address: str, *_: Any, **__: Any) -> LocalChannel:
        channel = LocalChannel(sched, clock, "peer")
        made.append((address, channel))
        return channel

    with _replaced(redisdb, "connect", connect), _replaced(channels, "peer_channel", peer_channel):
        apps = {
            "account": await build_account(settings("account", url, mode), clock),
            "binding": await build_binding(settings("binding", url, mode), clock),
            "settlement": await build_settlement(settings("settlement", url, mode), clock),
        }
    servers = {name: SimServer(name, app) for name, app in apps.items()}
    by_address = {ADDRESSES[name]: server for name, server in servers.items()}
    for address, channel in made:
        channel.server = by_address[address]
    return Stack(servers, await _jobs(apps), list(apps.values()))


async def _jobs(apps: dict[str, App]) -> dict[str, tuple[str, Job]]:
    """The passes of the background loops (server.build's App.background), by name."""
    owners = {
        type(job.__self__): job.__self__
        for app in apps.values()
        for job in app.background
        if hasattr(job, "__self__")
    }
    relay, lapser = owners[Relay], owners[Lapser]
    servicer = apps["binding"].services[0].servicer
    assert isinstance(relay, Relay) and isinstance(lapser, Lapser)
    assert isinstance(servicer, BindingServicer)
    lapser.block_ms = None
    await lapser.ensure_group()
    jobs: dict[str, tuple[str, Job]] = {
        "account-events": ("account", relay.pending.sweep),
        "bindings-lapsed": ("binding", lapser.step),
        "payer-orders": ("binding", servicer.lifecycle.orders.sweep),
        "binding-views": ("binding", servicer.lifecycle.views.sweep),
        "grants-voided": ("binding", servicer.lifecycle.grants.sweep),
        "grants-revoked": ("binding", servicer.lifecycle.revokes.sweep),
        "consents-lapsed": ("binding", servicer.consent.due.sweep),
    }
    stepwise = owners.get(Stepwise)
    if isinstance(stepwise, Stepwise):
        jobs["payments-recovered"] = ("account", stepwise.pending.sweep)
    return jobs


@contextlib.contextmanager
def _replaced(owner: Any, name: str, value: Any) -> Iterator[None]:
    saved = getattr(owner, name)
    setattr(owner, name, value)
    try:
        yield
    finally:
        setattr(owner, name, saved)


@contextlib.contextmanager
def world(sched: Scheduler, clock: SimClock, seed: int) -> Iterator[None]:
    """For the length of a run: the simulated clock, sleeps as gates, ids and jitter from the
    seed, and the services' logs quiet (a run's refusals are its outcomes, not news)."""
    ids = random.Random(seed * 7919 + 17)

    def token_hex(nbytes: int | None = None) -> str:
        n = 32 if nbytes is None else nbytes
        value = f"{ids.getrandbits(8 * n):0{2 * n}x}"
        h = HANDLER.get()
        if h is not None:
            h.runner.tokens.add(value)
        return value

    jitter = random.getstate()
    random.seed(seed)
    quiet = [(logging.getLogger(n), logging.getLogger(n).level) for n in ("", "gongji", "asyncio")]
    for logger, _ in quiet:
        logger.setLevel(logging.CRITICAL)
    try:
        with (
            patched(clock),
            # Redis's clock barely moves in a run: an event a cut-off lapser pass left pending
            # is claimed by the next pass, as it would be once its minute had passed
            _replaced(binding_events, "CLAIM_IDLE_MS", 0),
            _replaced(secrets, "token_hex", token_hex),
            _replaced(asyncio, "sleep", sched.sleep),
        ):
            yield
    finally:
        random.setstate(jitter)
        for logger, level in quiet:
            logger.setLevel(level)
