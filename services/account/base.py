"""What every AccountService method shares: validation helpers, idempotency, event marking."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

from services.account.events import Relay
from services.account.followers import Followers
from services.account.locks import Locks
from services.account.orders import Orders
from services.account.stepwise import Stepwise
from services.account.store import AccountStore
from services.common import ids
from services.common.clock import Clock, beijing_today
from services.common.idempotency import Requests
from services.common.policy import Policy
from services.common.registry import Registry

T = TypeVar("T")
Context = Any


class ServicerBase:
    def __init__(
        self, store: AccountStore, relay: Relay, locks: Locks, policy: Policy, clock: Clock,
        registry: Registry, stepwise: Stepwise | None = None,
    ) -> None:  # fmt: skip
        """`stepwise`: under Redis Cluster, how payments are made (in steps)."""
        self.store, self.relay, self.locks = store, relay, locks
        self.stepwise = stepwise
        self.policy, self.clock, self.registry = policy, clock, registry
        self.requests = Requests(store.redis, "acct")
        self.orders = Orders()
        self.followers = Followers(store)  # its poller runs with the server (server.build)

    # -- helpers ----------------------------------------------------------------------------
    def _pid(self, value: str, field: str = "person_id") -> str:
        return ids.person_id(value, beijing_today(self.clock), field)

    async def _announcing(self, pid: str, change: Awaitable[T]) -> T:
        """Run a change that emits an account event: mark the outbox before, relay it after."""
        await self.relay.mark(pid)
        try:
            return await change
        finally:
            await asyncio.shield(self.relay.relay_quietly(pid))
