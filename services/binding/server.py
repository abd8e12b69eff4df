"""BindingService: family bindings under per-province policy, and each beneficiary's payers."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import Any

import redis.asyncio as aioredis

from gongji.binding.v1 import binding_pb2 as pb
from gongji.binding.v1 import binding_pb2_grpc as pb_grpc
from services.account.client import AccountClient
from services.binding import domain, upgrade
from services.binding.consent import Consent, lapses_ms
from services.binding.convert import binding_pb, party, payer_pb
from services.binding.events import Lapser
from services.binding.lifecycle import Lifecycle
from services.binding.quotas import Quotas, new_quota_id
from services.binding.store import BindingStore, new_binding_id, provinces_of
from services.common import channels, ids, policy, redisdb
from services.common.access import Resolver
from services.common.backoff import Backoff
from services.common.clock import Clock, SystemClock, beijing_today
from services.common.config import Settings
from services.common.enums import BindingStatus, QuotaEndReason
from services.common.errors import DomainError
from services.common.idempotency import Requests
from services.common.policy import Policy
from services.common.rpc import REDIS_UNAVAILABLE, caller, remaining
from services.common.security import Security
from services.common.server import App, Service
from services.common.tracing import Tracing

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["BindingService"].full_name
Context = Any


class BindingServicer(pb_grpc.BindingServiceServicer):
    def __init__(
        self, store: BindingStore, accounts: AccountClient, policy: Policy, clock: Clock
    ) -> None:
        self.store, self.accounts, self.policy, self.clock = store, accounts, policy, clock
        self.lifecycle = Lifecycle(store, accounts)
        self.consent = Consent(store, self.lifecycle, clock)
        self.quotas = Quotas(store, accounts, self.lifecycle, self.consent, clock)
        self.requests = Requests(store.redis, "bind")

    def _pid(self, value: str, field: str) -> str:
        return ids.person_id(value, beijing_today(self.clock), field)

    async def CreateBinding(self, request: pb.CreateBindingRequest, context: Context) -> pb.Binding:
        binder = self._pid(request.binder_id, "binder_id")
        beneficiary = self._pid(request.beneficiary_id, "beneficiary_id")
        relationship = ids.enum_value(
            request.relationship, set(domain.RELATIONSHIPS), "relationship"
        )
        _dates(request.start_date, request.end_date)
        phone = ids.phone(request.beneficiary_phone) if request.beneficiary_phone else ""
        if binder == beneficiary:
            raise DomainError("SELF_BINDING", "a person cannot bind himself")
        pending = domain.needs_consent(caller().role, beneficiary, beijing_today(self.clock))
        status = BindingStatus.PENDING_CONSENT if pending else BindingStatus.ACTIVE
        created_ms = self.consent.now_ms()

        async def run(fp: str, marker: str) -> pb.Binding:
            # Judged against today only for a request not answered before: a retry after
            # midnight gets the binding it made, not INVALID_DATE for a start now past.
            start, end = self._window(request.start_date, request.end_date)
            found = await self.accounts.accounts([binder, beneficiary], remaining(context))
            sides = party(found.get(binder)), party(found.get(beneficiary))
            profile = self.policy.for_region(sides[0].region_code if sides[0] else "00")
            domain.check_creation(sides[0], sides[1], relationship, profile)
            assert sides[0] and sides[1]
            b = domain.Binding(
                binding_id=new_binding_id(
                    ids.province(sides[0].region_code), ids.province(sides[1].region_code)
                ),
                binder_id=binder, beneficiary_id=beneficiary, relationship=relationship,
                start_date=start, end_date=end, status=status, created_ms=created_ms, phone=phone,
            )  # fmt: skip
            made = await self.lifecycle.create(
                b, profile.max_bindings, fp, marker, remaining(context),
                lapses_ms(created_ms) if pending else 0,
            )  # fmt: skip
            return binding_pb(made)

        return await self.requests.once("CreateBinding", request, pb.Binding, run, context)

    def _window(self, start_date: str, end_date: str) -> tuple[str, str]:
        """B9 dates: the start today or later, at most a year ahead; the end after the start."""
        today = beijing_today(self.clock)
        start = (
            ids.date_between(start_date, "start_date", today, _a_year_after(today))
            if start_date
            else today
        )
        if end_date and ids.date(end_date, "end_date") <= start:
            raise DomainError("INVALID_DATE", "end_date must be after start_date")
        return start.isoformat(), end_date

    async def RemoveBinding(self, request: pb.RemoveBindingRequest, context: Context) -> pb.Binding:
        binding_id = ids.token(request.binding_id, "binding_id")

        async def run(fp: str, marker: str) -> pb.Binding:
            ended = await self.lifecycle.end(
                binding_id, BindingStatus.REMOVED, self.consent.now_ms(), remaining(context)
            )
            if ended is None:
                raise DomainError("BINDING_NOT_FOUND", "no such binding")
            return binding_pb(ended)

        return await self.requests.once("RemoveBinding", request, pb.Binding, run, context)

    async def GetBinding(self, request: pb.GetBindingRequest, context: Context) -> pb.Binding:
        return binding_pb(await self._binding(request.binding_id))

    async def _binding(self, binding_id: str) -> domain.Binding:
        found = await self.store.get(ids.token(binding_id, "binding_id"))
        if found is None:
            raise DomainError("BINDING_NOT_FOUND", "no such binding")
        return found

    async def parties(self, request: pb.RemoveBindingRequest, context: Context) -> list[str]:
        """Whose binding a RemoveBinding names: its binder's and its beneficiary's (access)."""
        found = await self._binding(request.binding_id)
        return [found.binder_id, found.beneficiary_id]

    async def relative(self, request: pb.ConfirmBindingRequest, context: Context) -> list[str]:
        """Who may confirm a binding: its beneficiary alone (access; B14)."""
        return [(await self._binding(request.binding_id)).beneficiary_id]

    async def family(self, request: pb.SetPayerOrderRequest, context: Context) -> list[str]:
        """Who may order a beneficiary's payers: he, and his binders as stored now (access,
        before the request's own checks: the list the request gives proves nothing)."""
        try:
            pid = self._pid(request.beneficiary_id, "beneficiary_id")
        except DomainError:
            return [request.beneficiary_id]
        return [pid, *(b.binder_id for b in await self.store.payers_of(pid))]

    async def ConfirmBinding(
        self, request: pb.ConfirmBindingRequest, context: Context
    ) -> pb.Binding:
        binding_id = ids.token(request.binding_id, "binding_id")

        async def run(fp: str, marker: str) -> pb.Binding:
            return binding_pb(await self.consent.confirm(binding_id, remaining(context)))

        return await self.requests.once("ConfirmBinding", request, pb.Binding, run, context)

    async def ListBindings(
        self, request: pb.ListBindingsRequest, context: Context
    ) -> pb.ListBindingsResponse:
        if bool(request.binder_id) == bool(request.beneficiary_id):
            raise DomainError("INVALID_ARGUMENT", "set exactly one of binder_id, beneficiary_id")
        as_binder = bool(request.binder_id)
        pid = self._pid(request.binder_id or request.beneficiary_id,
                        "binder_id" if as_binder else "beneficiary_id")  # fmt: skip
        bindings = await self.store.bindings_of(pid, as_binder, request.include_inactive)
        return pb.ListBindingsResponse(bindings=[binding_pb(b) for b in bindings])

    async def GetPayers(
        self, request: pb.GetPayersRequest, context: Context
    ) -> pb.GetPayersResponse:
        pid = self._pid(request.beneficiary_id, "beneficiary_id")
        day = ids.date(request.on_date, "on_date") if request.on_date else beijing_today(self.clock)
        payers = await self.store.payers_of(pid)
        return pb.GetPayersResponse(payers=[payer_pb(b) for b in payers if b.valid_on(day)])

    async def SetPayerOrder(
        self, request: pb.SetPayerOrderRequest, context: Context
    ) -> pb.GetPayersResponse:
        pid = self._pid(request.beneficiary_id, "beneficiary_id")
        binders = [self._pid(b, "binder_ids") for b in request.binder_ids]
        ids.items(binders, "binder_ids")
        if len(set(binders)) != len(binders):
            raise DomainError("INVALID_ARGUMENT", "binder_ids repeats a binder")

        async def run(fp: str, marker: str) -> pb.GetPayersResponse:
            current = await self.store.payers_of(pid)
            by_binder = {b.binder_id: b for b in current}
            if set(by_binder) != set(binders) or not current:
                raise DomainError(
                    "INVALID_ARGUMENT", "binder_ids must list exactly the active binders"
                )
            province = provinces_of(current[0].binding_id)[1]
            order = [by_binder[b].binding_id for b in binders]
            if not await self.store.reorder(province, pid, order):
                raise DomainError("INVALID_ARGUMENT", "the payers changed meanwhile; retry")
            await self.lifecycle.push_order(pid, remaining(context))
            payers = await self.store.payers_of(pid)
            return pb.GetPayersResponse(payers=[payer_pb(b) for b in payers])

        return await self.requests.once(
            "SetPayerOrder", request, pb.GetPayersResponse, run, context
        )

    # -- aid quotas (N1-N5, B14): services.binding.quotas ---------------------------------
    async def GrantQuota(self, request: pb.GrantQuotaRequest, context: Context) -> pb.Quota:
        funder = self._pid(request.funder_id, "funder_id")
        relative = self._pid(request.relative_id, "relative_id")
        relationship = ids.enum_value(
            request.relationship, {0, *domain.RELATIONSHIPS}, "relationship"
        )  # UNSPECIFIED is a precondition refused below, in API.md's order
        amount = ids.amount(request.amount_fen)
        if funder == relative:
            raise DomainError("SELF_BINDING", "a person cannot grant himself a quota")
        pending = domain.needs_consent(caller().role, relative, beijing_today(self.clock))

        async def run(fp: str, marker: str) -> pb.Quota:
            found = await self.accounts.accounts([funder, relative], remaining(context))
            sides = party(found.get(funder)), party(found.get(relative))
            domain.check_quota(sides[0], sides[1], relationship)
            assert sides[0] and sides[1]
            quota_id = new_quota_id(
                ids.province(sides[0].region_code), ids.province(sides[1].region_code), marker
            )
            profile = self.policy.for_region(sides[0].region_code)
            return await self.quotas.grant(
                quota_id, funder, relative, relationship, amount, pending, profile.max_quotas,
                remaining(context),
            )  # fmt: skip

        return await self.requests.once("GrantQuota", request, pb.Quota, run, context)

    async def ChangeQuota(self, request: pb.ChangeQuotaRequest, context: Context) -> pb.Quota:
        quota_id = ids.token(request.quota_id, "quota_id")
        amount = ids.amount(request.amount_fen, allow_zero=True)

        async def run(fp: str, marker: str) -> pb.Quota:
            return await self.quotas.change(quota_id, amount, remaining(context))

        return await self.requests.once("ChangeQuota", request, pb.Quota, run, context)

    async def EndQuota(self, request: pb.EndQuotaRequest, context: Context) -> pb.Quota:
        quota_id = ids.token(request.quota_id, "quota_id")
        who = caller()

        async def run(fp: str, marker: str) -> pb.Quota:
            link = await self.quotas.link(quota_id)
            by_relative = who.role == "citizen" and who.sub == link.relative_id
            reason = QuotaEndReason.BY_RELATIVE if by_relative else QuotaEndReason.BY_FUNDER
            return await self.quotas.end(quota_id, reason, remaining(context))

        return await self.requests.once("EndQuota", request, pb.Quota, run, context)

    async def GetQuota(self, request: pb.GetQuotaRequest, context: Context) -> pb.Quota:
        return await self.quotas.get(ids.token(request.quota_id, "quota_id"), remaining(context))

    async def ListQuotas(
        self, request: pb.ListQuotasRequest, context: Context
    ) -> pb.ListQuotasResponse:
        if bool(request.funder_id) == bool(request.relative_id):
            raise DomainError("INVALID_ARGUMENT", "set exactly one of funder_id, relative_id")
        as_funder = bool(request.funder_id)
        pid = self._pid(request.funder_id or request.relative_id,
                        "funder_id" if as_funder else "relative_id")  # fmt: skip
        found = await self.quotas.listed(pid, as_funder, request.include_ended, remaining(context))
        return pb.ListQuotasResponse(quotas=found)

    async def ConfirmQuota(self, request: pb.ConfirmQuotaRequest, context: Context) -> pb.Quota:
        quota_id = ids.token(request.quota_id, "quota_id")

        async def run(fp: str, marker: str) -> pb.Quota:
            return await self.quotas.confirm(quota_id, remaining(context))

        return await self.requests.once("ConfirmQuota", request, pb.Quota, run, context)

    async def quota_parties(self, request: pb.EndQuotaRequest, context: Context) -> list[str]:
        """Whose quota an EndQuota names: its funder's and its relative's (access)."""
        link = await self.quotas.link(ids.token(request.quota_id, "quota_id"))
        return [link.funder_id, link.relative_id]

    async def quota_funder(self, request: pb.ChangeQuotaRequest, context: Context) -> list[str]:
        """Who may change a quota: its funder alone (access)."""
        return [(await self.quotas.link(ids.token(request.quota_id, "quota_id"))).funder_id]

    async def quota_relative(self, request: pb.ConfirmQuotaRequest, context: Context) -> list[str]:
        """Who may confirm a quota: its relative alone (access; B14)."""
        return [(await self.quotas.link(ids.token(request.quota_id, "quota_id"))).relative_id]


def _dates(start_date: str, end_date: str) -> None:
    """B9 dates as dates, the end after the start when both are given (what does not depend
    on the day the request is made: CreateBinding's `_window` judges the rest)."""
    start = ids.date(start_date, "start_date") if start_date else None
    end = ids.date(end_date, "end_date") if end_date else None
    if start and end and end <= start:
        raise DomainError("INVALID_DATE", "end_date must be after start_date")


def _a_year_after(day: dt.date) -> dt.date:
    try:
        return day.replace(year=day.year + 1)
    except ValueError:  # 29 February
        return day.replace(year=day.year + 1, day=28)


log = logging.getLogger(__name__)


async def converted(redis: aioredis.Redis) -> None:
    """Views kept in the earlier layout converted (services.binding.upgrade) before the service
    serves: until Redis answers, the start waits."""
    backoff = Backoff(0.1, 2.0)
    while True:
        try:
            await upgrade.convert(redis)
            return
        except REDIS_UNAVAILABLE as e:
            log.warning("redis unreachable at start; binding views not yet checked",
                        extra={"fields": {"error": type(e).__name__}})  # fmt: skip
            await asyncio.sleep(backoff.pause())


async def build(settings: Settings, clock: Clock | None = None) -> App:
    fault = settings.fault_plan
    security = Security.of(settings)
    redis = redisdb.connect(settings.redis_url, pointed=fault is not None, mode=settings.redis_mode)
    tracing = Tracing.of(settings.service, settings.traces_exporter)
    channel = channels.peer_channel(
        settings.account_addr, security, pointed=fault is not None, tracing=tracing
    )
    await converted(redis)
    store = BindingStore(redis)
    servicer = BindingServicer(
        store, AccountClient(channel), policy.load(settings.policy_file), clock or SystemClock()
    )
    lapser = Lapser(redis, store, servicer.lifecycle, servicer.quotas, servicer.clock)

    async def close() -> None:
        await channel.close()
        await redis.aclose()

    service = Service(SERVICE_NAME, pb_grpc.add_BindingServiceServicer_to_server, servicer)
    background = [lapser.run, servicer.lifecycle.relay, servicer.consent.sweep]
    resolvers: dict[str, Resolver] = {
        "RemoveBinding": servicer.parties, "ConfirmBinding": servicer.relative,
        "SetPayerOrder": servicer.family, "EndQuota": servicer.quota_parties,
        "ChangeQuota": servicer.quota_funder, "ConfirmQuota": servicer.quota_relative,
    }  # fmt: skip
    return App(
        services=[service], background=background, close=close, fault=fault, security=security,
        resolvers=resolvers, redis=redis, tracing=tracing,
    )  # fmt: skip
