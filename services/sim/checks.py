"""A checkpoint: the world brought to rest, then compared with the model and audited.

At rest means: every call whose answer was lost answered (retried as its caller would, without
faults this time) or looked up (a caller who gave up), the background loops run until nothing
is due, the clock past the recovery window. Then:
- every account's balance is the model's (money moved only by the rules' effect of what was
  answered), and its status, stop, type and region too, where the model could know them;
- the audit (services.audit.run) finds every invariant holding over the whole Redis, with no
  payment, lock or request claim allowed to stand in flight at all (nothing runs now);
- the model reads again the relationships of the people it was unsure of.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from google.protobuf.message import Message

from gongji.account.v1 import account_pb2 as apb
from gongji.binding.v1 import binding_pb2 as bpb
from gongji.settlement.v1 import settlement_pb2 as spb
from services.audit.run import audit
from services.common import policy as policies
from services.common.rpc import reason_of
from services.settlement.bill import PremiumOrder
from services.sim import stack as stacks
from services.sim.calls import SimContext
from services.sim.clock import SimClock
from services.sim.model import B_ACTIVE, Model
from services.sim.ops import SERVICE
from services.sim.ops_bindings import binding_of
from services.sim.ops_payments import learn, legs_of
from services.sim.ops_quotas import quota_of

Ask = Callable[[str, str, Message], Awaitable[Any]]
_SERVICES = {
    "account": "gongji.account.v1.AccountService",
    "binding": "gongji.binding.v1.BindingService",
    "settlement": "gongji.settlement.v1.SettlementService",
}


def asker(stack: stacks.Stack, clock: SimClock) -> Ask:
    """A read outside the schedule (no runner: no gate, no fault): the answer, or the reason."""

    async def ask(service: str, method: str, request: Message) -> Any:
        path = f"/{_SERVICES[service]}/{method}"
        context = SimContext(SERVICE, clock, 30)
        try:
            return await stack.servers[service].invoke(path, request, context)
        except grpc.aio.AioRpcError as e:
            return reason_of(e) or e.code().name

    return ask


async def premium_probe(ask: Ask, m: Model, payment_id: str) -> None:
    """A premium whose answer nobody read: into the model if it was paid."""
    found = await ask("account", "GetPayment", apb.GetPaymentRequest(payment_id=payment_id))
    if isinstance(found, str) or payment_id in m.premiums:
        return
    order = PremiumOrder.from_details(found.details)
    quota = next((s.quota_id for s in found.shares if s.quota_id), "")
    m.premium(
        payment_id, order.payer_id, order.beneficiary_id, order.year, order.amount_fen,
        int(order.kind), quota,
    )  # fmt: skip


async def settlement_probe(
    ask: Ask, m: Model, institution: str, key: str, content: tuple[object, ...]
) -> list[str]:
    """A settlement whose caller gave up: into the model as it stands, once."""
    request = spb.GetSettlementRequest(institution_id=institution, medins_setl_id=key)
    found = await ask("settlement", "GetSettlement", request)
    if isinstance(found, str):
        return []
    known = m.settlements.get(found.settlement_id)
    if known is None:
        return learn(m, found, content)
    if known.legs != legs_of(found):
        return [
            f"settlement {found.settlement_id} reads legs {legs_of(found)}, answered {known.legs}"
        ]
    return []


async def compare(ask: Ask, m: Model) -> list[str]:
    """Every account as the model has it: the balance always, the rest where it is sure."""
    out, pids = [], sorted(m.accounts)
    # a funder whose relative's quotas may have ended meanwhile (N4): what he sets aside too
    unsure = m.uncertain | {q.funder for q in m.quotas.values() if q.relative in m.uncertain}
    for first in range(0, len(pids), 100):
        batch = apb.BatchGetAccountsRequest(person_ids=pids[first : first + 100])
        found = await ask("account", "BatchGetAccounts", batch)
        for a in found.accounts:
            mine = m.accounts[a.person_id]
            if a.person_id in m.loose:  # the audit checks its books; the model takes them
                mine.balance = a.balance_fen
            if a.balance_fen != mine.balance:
                out.append(
                    f"model: {a.person_id} holds {a.balance_fen} fen, the rules give {mine.balance}"
                )
            if a.person_id not in unsure and a.quota_reserved_fen != m.reserved(a.person_id):
                out.append(
                    f"model: {a.person_id} has {a.quota_reserved_fen} fen set aside, the rules "
                    f"give {m.reserved(a.person_id)}"
                )
            theirs = (a.status, a.insurance_type, a.stopped_reason, a.region_code)
            if a.person_id in m.uncertain:
                if mine.type != a.insurance_type:
                    mine.kept = a.insurance_type == 2 and mine.personal
                mine.status, mine.type, mine.stop, mine.region = theirs
            elif theirs != (mine.status, mine.type, mine.stop, mine.region):
                out.append(
                    f"model: {a.person_id} is {theirs}, the rules give "
                    f"{(mine.status, mine.type, mine.stop, mine.region)}"
                )
    m.loose.clear()
    return out + await _quotas_compared(ask, m)


async def _quotas_compared(ask: Ask, m: Model) -> list[str]:
    """Every quota as its funder's account holds it: what was used always (money moves only
    by the rules' draws and refunds), its amount and status where the model is sure."""
    out = []
    for funder in sorted({q.funder for q in m.quotas.values()}):
        for q in await _quotas(ask, "funder_id", funder):
            mine = m.quotas.get(q.quota_id)
            if mine is None:
                continue  # one the model never heard of: resync reads it
            if q.quota_id in m.loose_quotas:  # the audit checks its books; the model takes them
                mine.used = q.used_fen
            sure = not {q.funder_id, q.relative_id} & m.uncertain
            if q.used_fen != mine.used or (
                sure
                and (q.status, q.end_reason, q.granted_fen)
                != (mine.status, mine.reason, mine.granted)
            ):
                out.append(
                    f"model: quota {q.quota_id} is {_quota_view(q)}, the rules give "
                    f"{(mine.status, mine.reason, mine.granted, mine.used)}"
                )
    m.loose_quotas.clear()
    return out


def _quota_view(q: bpb.Quota) -> tuple[int, int, int, int]:
    return (q.status, q.end_reason, q.granted_fen, q.used_fen)


async def _quotas(ask: Ask, side: str, pid: str) -> list[bpb.Quota]:
    request = bpb.ListQuotasRequest(include_ended=True, **{side: pid})
    listed = await ask("binding", "ListQuotas", request)
    return [] if isinstance(listed, str) else list(listed.quotas)


async def resync(ask: Ask, m: Model) -> None:
    """The relationships of the people the model is unsure of, read again: their bindings
    either side, the payer order of everyone they pay for, their auto-pay."""
    people = sorted(p for p in m.uncertain if p in m.accounts)
    beneficiaries = set(people)
    for pid in people:
        for b in await _bindings(ask, "binder_id", pid):
            _keep(m, b)
            beneficiaries.add(b.beneficiary_id)
        auto = await ask(
            "settlement", "GetPremiumAutoPay", spb.GetPremiumAutoPayRequest(beneficiary_id=pid)
        )
        if not isinstance(auto, str):
            m.autopays[pid] = (auto.payer_id, auto.enabled)
    for pid in sorted(beneficiaries):
        listed = await _bindings(ask, "beneficiary_id", pid)
        for b in listed:
            _keep(m, b)
        active = sorted((b.priority, b.binding_id) for b in listed if b.status == B_ACTIVE)
        m.orders[pid] = [binding_id for _, binding_id in active]
    for pid in people:
        for q in await _quotas(ask, "funder_id", pid):
            m.keep_quota(quota_of(q))
        granted = await _quotas(ask, "relative_id", pid)
        for q in granted:
            m.keep_quota(quota_of(q))
        m.granted[pid] = [q.quota_id for q in granted]  # in grant order
    m.uncertain.clear()


async def _bindings(ask: Ask, side: str, pid: str) -> list[bpb.Binding]:
    request = bpb.ListBindingsRequest(include_inactive=True, **{side: pid})
    listed = await ask("binding", "ListBindings", request)
    return [] if isinstance(listed, str) else list(listed.bindings)


def _keep(m: Model, b: bpb.Binding) -> None:
    known = m.bindings.get(b.binding_id)
    m.bindings[b.binding_id] = binding_of(b, known.created_ms if known else 0)


async def audited(url: str, mode: str) -> list[str]:
    """The audit over the whole Redis, nothing allowed in flight (nothing runs at rest)."""
    policy = policies.load(stacks.POLICY_FILE)
    report = await audit(url, recovery_after_ms=-1, policy=policy, redis_mode=mode)
    return [f"audit {v.rule}: {v.subject}: {v.detail}" for v in report.violations]
