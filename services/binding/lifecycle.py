"""A binding and its family-aid grant on the binder's account move together.

The account service pays a relative's bill from a binder's account only under a grant for that
binding (checked in the same script as the debit, rule S4). So the grant is written before the
binding exists, and revoked after the binding ends and before the end is acknowledged: once
RemoveBinding has answered, no payment can take the binder's money for that relative (B11).
A crash between the two steps leaves at most a grant without an ACTIVE binding, which pays
nothing: the settlement service asks only the payers GetPayers lists, and a retry revokes it.
"""

from __future__ import annotations

import asyncio
import logging

from services.account.client import AccountClient
from services.binding.domain import Binding
from services.binding.store import BindingStore
from services.common.errors import DomainError

log = logging.getLogger(__name__)


class Lifecycle:
    def __init__(self, store: BindingStore, accounts: AccountClient) -> None:
        self.store, self.accounts = store, accounts

    async def create(
        self, b: Binding, limit: int, fp: str, marker: str, timeout_s: float
    ) -> Binding:
        await self.accounts.grant(
            b.binder_id, b.beneficiary_id, b.binding_id, b.start_date, b.end_date, timeout_s
        )
        try:
            return await self.store.create(b, limit, fp, marker)
        except DomainError:
            await asyncio.shield(self._revoke_quietly(b.binder_id, b.binding_id))
            raise

    async def end(
        self, binding_id: str, status: int, ended_ms: int, timeout_s: float
    ) -> Binding | None:
        """End the binding (unchanged if it has ended already), then revoke its grant."""
        ended = await self.store.end(binding_id, status, ended_ms)
        if ended is not None:
            await self.accounts.revoke(ended.binder_id, binding_id, timeout_s)
        return ended

    async def _revoke_quietly(self, binder: str, binding_id: str) -> None:
        """A grant whose binding was refused: revoke it if we can; if not, it pays nothing."""
        try:
            await self.accounts.revoke(binder, binding_id, 5.0)
        except Exception:
            log.warning(
                "grant of a refused binding left", extra={"fields": {"binding_id": binding_id}}
            )
