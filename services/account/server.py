"""AccountService: validates, then calls one store script per account. Servicer methods stay
short; every refusal is a DomainError that services.common.rpc maps to a status."""

from __future__ import annotations

from google.protobuf.message import Message

from gongji.account.v1 import account_pb2 as pb
from gongji.account.v1 import account_pb2_grpc as pb_grpc
from services.account import domain
from services.account.base import Context, ServicerBase
from services.account.contributing import ContributionMethods
from services.account.convert import account_pb, entry_pb
from services.account.events import Relay
from services.account.following import FollowMethods
from services.account.grants import GrantMethods
from services.account.locks import Locks
from services.account.payments import PaymentMethods
from services.account.quotas import QuotaMethods
from services.account.special import SpecialMethods
from services.account.stepwise import Stepwise
from services.account.store import AccountStore
from services.common import ids, policy, redisdb, registry
from services.common.clock import Clock, SystemClock
from services.common.coalesce import coalescing
from services.common.config import Settings
from services.common.enums import AccountStatus, CreditKind, InsuranceType
from services.common.errors import DomainError
from services.common.rpc import remaining
from services.common.security import Security
from services.common.server import App, Service
from services.common.tracing import Tracing

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["AccountService"].full_name

_INSURANCE_TYPES = frozenset(InsuranceType)


class AccountServicer(
    PaymentMethods, GrantMethods, QuotaMethods, SpecialMethods, ContributionMethods,
    FollowMethods, ServicerBase, pb_grpc.AccountServiceServicer,
):  # fmt: skip
    # -- accounts ---------------------------------------------------------------------------
    async def OpenAccount(self, request: pb.OpenAccountRequest, context: Context) -> pb.Account:
        pid = self._pid(request.person_id)
        name = ids.text(request.name, "name", max_len=64)
        kind = ids.enum_value(request.insurance_type, _INSURANCE_TYPES, "insurance_type")
        region = ids.region_code(request.region_code)

        async def run(fp: str, marker: str) -> pb.Account:
            change = self.store.open(pid, name, kind, region, fp, marker)
            return account_pb(await self._announcing(pid, change))

        return await self.requests.once("OpenAccount", request, pb.Account, run, context)

    async def GetAccount(self, request: pb.GetAccountRequest, context: Context) -> pb.Account:
        return account_pb(await self.store.get(self._pid(request.person_id)))

    async def BatchGetAccounts(
        self, request: pb.BatchGetAccountsRequest, context: Context
    ) -> pb.BatchGetAccountsResponse:
        if len(request.person_ids) > ids.MAX_ITEMS:
            raise DomainError("INVALID_ARGUMENT", f"at most {ids.MAX_ITEMS} person_ids")
        pids = list(dict.fromkeys(self._pid(p, "person_ids") for p in request.person_ids))
        accounts = await self.store.batch_get(pids)
        return pb.BatchGetAccountsResponse(accounts=[account_pb(a) for a in accounts])

    async def SuspendAccount(
        self, request: pb.SuspendAccountRequest, context: Context
    ) -> pb.Account:
        pid = self._pid(request.person_id)
        reason = ids.text(request.reason, "reason")
        return await self._set_status(
            "SuspendAccount", request, context, pid, AccountStatus.SUSPENDED, reason
        )

    async def ResumeAccount(self, request: pb.ResumeAccountRequest, context: Context) -> pb.Account:
        pid = self._pid(request.person_id)
        return await self._set_status(
            "ResumeAccount", request, context, pid, AccountStatus.ACTIVE, ""
        )

    async def _set_status(
        self, method: str, request: Message, context: Context, pid: str, status: int, reason: str
    ) -> pb.Account:
        async def run(fp: str, marker: str) -> pb.Account:
            async with self.locks.hold([pid], remaining(context)):  # S4: never under a plan
                change = self.store.set_status(pid, status, reason, fp, marker)
                return account_pb(await self._announcing(pid, change))

        return await self.requests.once(method, request, pb.Account, run, context)

    # -- money in ---------------------------------------------------------------------------
    async def Credit(self, request: pb.CreditRequest, context: Context) -> pb.LedgerEntry:
        pid = self._pid(request.person_id)
        amount = ids.amount(request.amount_fen)
        credit_kind = ids.enum_value(request.kind, set(domain.ENTRY_KIND_OF_CREDIT), "kind")
        memo = ids.text(request.memo, "memo", required=False)
        kind = domain.ENTRY_KIND_OF_CREDIT[CreditKind(credit_kind)]

        async def run(fp: str, marker: str) -> pb.LedgerEntry:
            return entry_pb(await self.store.credit(pid, amount, kind, memo, fp, marker))

        return await self.requests.once("Credit", request, pb.LedgerEntry, run, context)

    async def ListEntries(
        self, request: pb.ListEntriesRequest, context: Context
    ) -> pb.ListEntriesResponse:
        pid = self._pid(request.person_id)
        size = ids.page_size(request.page_size)
        before = ids.page_token(request.page_token) if request.page_token else None
        entries, next_before = await self.store.entries(pid, size, before)
        return pb.ListEntriesResponse(
            entries=[entry_pb(e) for e in entries],
            next_page_token=str(next_before) if next_before else "",
        )


async def build(settings: Settings, clock: Clock | None = None) -> App:
    """The account service's parts, wired; nothing connects until the first call."""
    fault = settings.fault_plan
    security = Security.of(settings)
    redis = redisdb.connect(settings.redis_url, pointed=fault is not None, mode=settings.redis_mode)
    if not getattr(redis, "pointed", False):  # a point per command, on its own caller's behalf
        redis = coalescing(redis)
    relay = Relay(redis)
    store = AccountStore(redis)
    locks = Locks(store, settings.lock_lease_ms)
    background = [relay.run]
    stepwise = None
    if settings.redis_mode == "cluster":  # a family's accounts on several slots: in steps
        stepwise = Stepwise(store, locks, settings.recovery_after_ms)
        background.append(stepwise.run)
    servicer = AccountServicer(
        store,
        relay,
        locks,
        policy.load(settings.policy_file),
        clock or SystemClock(),
        registry.load(settings.registry_file),
        stepwise,
    )
    background.append(servicer.followers.run)
    service = Service(SERVICE_NAME, pb_grpc.add_AccountServiceServicer_to_server, servicer)
    return App(
        services=[service], background=background, close=redis.aclose, fault=fault,
        security=security, redis=redis,
        tracing=Tracing.of(settings.service, settings.traces_exporter),
        on_drain=[servicer.followers.drain],
    )  # fmt: skip
