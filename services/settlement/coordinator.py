"""Settle as a small distributed transaction over a family's accounts (DESIGN "The settlement
service coordinates"): lock in sorted order, plan, journal PENDING, place fenced holds, decide
COMMITTING (the point of no return), commit, journal SETTLED. Recovery finishes what a dead
owner left by the journal's decision; decisions are compare-and-set, so only one side decides.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import signal
import time
from typing import Any

import grpc

from gongji.account.v1 import account_pb2 as apb
from services.account.client import AccountClient
from services.binding.client import BindingClient
from services.common.errors import DomainError
from services.common.locks import Locks
from services.common.rpc import error_from_rpc
from services.settlement import store as st
from services.settlement.plan import FAMILY_AID, OWN_ACCOUNT, Source, waterfall

log = logging.getLogger(__name__)
ACTIVE, SUSPENDED = 1, 2
EMPLOYEE = 1
PEER_TIMEOUT_S = 5.0


@dataclasses.dataclass(frozen=True)
class Bill:
    """A validated SettleRequest."""

    institution_id: str
    medins_setl_id: str
    patient_id: str
    credential_type: int
    agent_id: str
    medfee_total_fen: int
    fund_pay_fen: int
    personal_burden_fen: int
    use_personal_account: bool
    use_family_aid: bool
    service_date: str


def settlement_id(institution_id: str, medins_setl_id: str) -> str:
    """Derived from the key, so every retry of a bill works on the same settlement and holds."""
    return "S" + hashlib.sha256(f"{institution_id}/{medins_setl_id}".encode()).hexdigest()[:24]


def now_ms() -> int:
    return int(time.time() * 1000)


class Coordinator:
    def __init__(
        self, store: st.SettlementStore, accounts: AccountClient, bindings: BindingClient,
        locks: Locks, recovery_after_ms: int, faults: frozenset[str],
    ) -> None:  # fmt: skip
        self.store, self.accounts, self.bindings, self.locks = store, accounts, bindings, locks
        self.recovery_after_ms, self.faults = recovery_after_ms, faults

    def _fault(self, point: str, sig: signal.Signals = signal.SIGKILL) -> None:
        """Test-only stops at awkward moments: SIGKILL (a crash) or SIGSTOP (a long pause)."""
        if point in self.faults:
            log.warning("fault injected", extra={"fields": {"point": point}})
            os.kill(os.getpid(), sig)

    async def _patient(self, pid: str) -> apb.Account:
        found = (await self.accounts.accounts([pid], PEER_TIMEOUT_S)).get(pid)
        if found is None:
            raise DomainError("ACCOUNT_NOT_FOUND", "the patient is not insured here")
        if found.status == SUSPENDED:
            raise DomainError("ACCOUNT_SUSPENDED", "online settlement is suspended (S5)")
        if found.status != ACTIVE:
            raise DomainError("ACCOUNT_CLOSED", "the patient's account is closed")
        return found

    async def _candidates(self, bill: Bill, patient: apb.Account) -> list[str]:
        """Who may pay, in priority order: own account, then payers 1, 2, 3 (S2, S3)."""
        if not bill.use_personal_account:
            return []
        own = [patient.person_id] if patient.insurance_type == EMPLOYEE else []
        if not bill.use_family_aid:
            return own
        payers = await self.bindings.payers(bill.patient_id, bill.service_date, PEER_TIMEOUT_S)
        return own + [p.binder_id for p in payers if p.binder_id != patient.person_id]

    async def _plan(self, bill: Bill, candidates: list[str]) -> list[dict[str, Any]]:
        accounts = await self.accounts.accounts(candidates, PEER_TIMEOUT_S)
        sources = [
            Source(pid, OWN_ACCOUNT if pid == bill.patient_id else FAMILY_AID,
                   accounts[pid].available_fen)
            for pid in candidates
            # S4: a payer is skipped unless ACTIVE with money (own account: ACTIVE checked above)
            if pid in accounts and accounts[pid].status == ACTIVE and accounts[pid].balance_fen > 0
        ]  # fmt: skip
        plan = waterfall(bill.personal_burden_fen, sources)
        return [{"payer_id": s.person_id, "kind": s.kind, "amount": s.amount_fen,
                 "entry_id": "", "balance_after": 0} for s in plan.shares]  # fmt: skip

    async def quote(self, bill: Bill) -> dict[str, Any]:
        """S6: the split a settlement would make now; moves nothing, records nothing."""
        patient = await self._patient(bill.patient_id)
        legs = await self._plan(bill, await self._candidates(bill, patient))
        return _journal(bill, settlement_id(bill.institution_id, bill.medins_setl_id), 1, legs)

    async def settle(self, bill: Bill, fp: str, wait_s: float) -> dict[str, Any]:
        sid = settlement_id(bill.institution_id, bill.medins_setl_id)
        claim = json.dumps({"sid": sid, "fp": fp})
        held_by = await self.store.claim(bill.institution_id, bill.medins_setl_id, claim)
        if held_by is not None:
            return await self._replay(held_by, fp)
        journal: dict[str, Any] | None = None
        try:
            patient = await self._patient(bill.patient_id)
            candidates = await self._candidates(bill, patient)
            async with self.locks.hold(candidates, wait_s) as held:
                legs = await self._plan(bill, candidates)
                for i, leg in enumerate(legs):
                    leg["hold_id"], leg["fence"] = f"{sid}:{i}", held.fences[leg["payer_id"]]
                journal = _journal(bill, sid, st.PENDING, legs)
                journal["fp"] = fp
                await self.store.save(journal)
                await self.store.recover_later(sid, now_ms() + self.recovery_after_ms)
                self._fault("pause_before_place_holds", signal.SIGSTOP)
                await self._place(journal, apb.ENTRY_KIND_SETTLEMENT)
                self._fault("after_place_holds")
                journal["status"] = st.COMMITTING
                if not await self.store.transition(journal, st.PENDING):
                    raise DomainError("SETTLEMENT_ABORTED", "recovery aborted this settlement")
                self._fault("after_committing")
                return await self.finish(journal)
        except (DomainError, grpc.aio.AioRpcError) as e:
            error = e if isinstance(e, DomainError) else error_from_rpc(e)
            if journal is None:  # refused before anything was written: the key is free again
                await self.store.unclaim(bill.institution_id, bill.medins_setl_id, claim)
            elif journal["status"] == st.PENDING:
                await self.abort(journal)
            raise error from None

    async def _place(self, journal: dict[str, Any], kind: int) -> None:
        if not journal["legs"]:
            return
        holds = [apb.HoldSpec(hold_id=leg["hold_id"], person_id=leg["payer_id"],
                              amount_fen=leg["amount"], fencing_token=leg["fence"])
                 for leg in journal["legs"]]  # fmt: skip
        sid = journal["settlement_id"]
        await self.accounts.place(holds, kind, sid, f"{sid}:place", PEER_TIMEOUT_S)

    def _refs(self, journal: dict[str, Any]) -> list[apb.HoldRef]:
        return [apb.HoldRef(hold_id=leg["hold_id"], person_id=leg["payer_id"])
                for leg in journal["legs"]]  # fmt: skip

    async def finish(self, journal: dict[str, Any]) -> dict[str, Any]:
        """COMMITTING -> commit every hold -> SETTLED. Safe to repeat (commits are idempotent)."""
        sid = journal["settlement_id"]
        refs = self._refs(journal)
        entries = await self.accounts.commit(refs, f"{sid}:commit", PEER_TIMEOUT_S) if refs else []
        for leg, entry in zip(journal["legs"], entries, strict=True):
            leg["entry_id"], leg["balance_after"] = entry.entry_id, entry.balance_after_fen
        journal["status"], journal["settled_ms"] = st.SETTLED, now_ms()
        if await self.store.transition(journal, st.COMMITTING):
            await self.store.index(journal)
        await self.store.recovered(sid)
        return await self.store.load(sid) or journal

    async def abort(self, journal: dict[str, Any]) -> None:
        """PENDING -> ABORTED, then void its holds (unknown holds are voided as tombstones)."""
        sid = journal["settlement_id"]
        journal["status"] = st.ABORTED
        if not await self.store.transition(journal, st.PENDING):
            return
        refs = self._refs(journal)
        if refs:
            await self.accounts.void(refs, f"{sid}:void", PEER_TIMEOUT_S)
        await self.store.recovered(sid)

    async def _replay(self, held_by: str, fp: str) -> dict[str, Any]:
        if held_by == st.TOMBSTONE:
            raise DomainError("SETTLEMENT_REVERSED", "this settlement was reversed")
        claim = json.loads(held_by)
        if claim["fp"] != fp:
            raise DomainError("IDEMPOTENCY_CONFLICT", "medins_setl_id was used with other content")
        journal = await self.store.load(claim["sid"])
        if journal is None or journal["status"] in (st.PENDING, st.COMMITTING):
            raise DomainError("SETTLEMENT_IN_PROGRESS", "this settlement is still in flight")
        if journal["status"] == st.ABORTED:
            raise DomainError("SETTLEMENT_ABORTED", "this settlement aborted; use a new id")
        return journal

    async def cancel(self, sid: str, reason: str, request_id: str, wait_s: float) -> dict[str, Any]:
        """S9: every leg refunded exactly once, to its own account, under the payers' locks."""
        journal = await self.store.load(sid)
        if journal is None:
            raise DomainError("SETTLEMENT_NOT_FOUND", "no such settlement")
        if journal["status"] == st.CANCELLED:
            if journal.get("cancel_request_id") == request_id:
                return journal
            raise DomainError("ALREADY_CANCELLED", "this settlement was cancelled before")
        if journal["status"] != st.SETTLED:
            raise DomainError("SETTLEMENT_NOT_SETTLED", "only a settled settlement is cancelled")
        async with self.locks.hold([leg["payer_id"] for leg in journal["legs"]], wait_s):
            specs = [apb.RefundSpec(entry_id=leg["entry_id"], person_id=leg["payer_id"],
                                    refund_id=f"{sid}:refund:{i}")
                     for i, leg in enumerate(journal["legs"])]  # fmt: skip
            if specs:
                await self.accounts.refund(specs, f"cancel {sid}", f"{sid}:refund", PEER_TIMEOUT_S)
            journal.update(status=st.CANCELLED, cancelled_ms=now_ms(), cancel_reason=reason,
                           cancel_request_id=request_id)  # fmt: skip
            if not await self.store.transition(journal, st.SETTLED):
                return await self.cancel(sid, reason, request_id, wait_s)
        return journal


def _journal(bill: Bill, sid: str, status: int, legs: list[dict[str, Any]]) -> dict[str, Any]:
    paid_own = sum(leg["amount"] for leg in legs if leg["kind"] == OWN_ACCOUNT)
    paid_family = sum(leg["amount"] for leg in legs if leg["kind"] == FAMILY_AID)
    return {
        **dataclasses.asdict(bill), "settlement_id": sid, "status": status, "legs": legs,
        "acct_pay": paid_own, "acct_mulaid_pay": paid_family,
        "cash_pay": bill.personal_burden_fen - paid_own - paid_family,
        "settled_ms": 0, "cancelled_ms": 0, "cancel_reason": "",
    }  # fmt: skip
