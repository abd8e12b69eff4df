"""SettlementService: validates bills and premiums and hands them to the coordinator."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import grpc

from gongji.account.v1 import account_pb2 as apb
from gongji.settlement.v1 import settlement_pb2 as pb
from gongji.settlement.v1 import settlement_pb2_grpc as pb_grpc
from services.account.client import AccountClient
from services.common import channels, ids, policy, redisdb, registry
from services.common.clock import Clock, SystemClock, beijing_today
from services.common.config import Settings
from services.common.enums import CredentialType, PremiumKind
from services.common.errors import DomainError
from services.common.idempotency import Requests
from services.common.policy import Policy
from services.common.registry import Registry
from services.common.rpc import Deadline, caller, reason_of
from services.common.security import Security
from services.common.server import App, Service
from services.common.tracing import Tracing
from services.settlement.autopay import AutoPays, Deductions
from services.settlement.autopaying import AutoPayMethods
from services.settlement.bill import Bill, PremiumOrder, given_settlement_id, settlement_id
from services.settlement.clearing import ClearingMethods
from services.settlement.convert import premium_pb, settlement_pb, shown_to
from services.settlement.coordinator import Coordinator
from services.settlement.watching import WatchMethods

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["SettlementService"].full_name
Context = Any
_CREDENTIALS = frozenset(CredentialType)
_SERVICE_DATE_DAYS = 30  # a bill is settled within 30 days of its service date
_MAX_OFFSET = 10**6


def _shown(s: pb.Settlement) -> pb.Settlement:
    """The answer as this call's caller may see it: others' balances left out."""
    return shown_to(caller(), s)


def _not_designated() -> DomainError:
    return DomainError(
        "INSTITUTION_NOT_DESIGNATED", "the institution is not a designated one (registry)"
    )


class SettlementServicer(
    AutoPayMethods, WatchMethods, ClearingMethods, pb_grpc.SettlementServiceServicer
):
    """Validates bills and premiums (S1, S7, dates, credentials) and hands each to one atomic
    step at the account service; keeps the request records of cancels, reversals, premiums."""

    def __init__(
        self, coordinator: Coordinator, requests: Requests, clock: Clock, registry: Registry,
        policy: Policy,
    ) -> None:  # fmt: skip
        self.coordinator, self.requests, self.clock = coordinator, requests, clock
        self.registry = registry
        self.draining = asyncio.Event()
        self.autopays = AutoPays(requests.redis)
        self.deductions = Deductions(coordinator, self.autopays, policy)

    def _bill(self, r: pb.SettleRequest, window: bool = True) -> Bill:
        """The bill asked; `window`: its service date within the days a bill is settled in
        (else only a date: a retry of a bill settled in time, `Settle`)."""
        patient = self._pid(r.patient_id, "patient_id")
        ids.enum_value(r.credential_type, _CREDENTIALS, "credential_type")
        holder = self._pid(r.credential_holder_id, "credential_holder_id")
        agent = self._pid(r.agent_id, "agent_id") if r.agent_id else ""
        for value, name in ((r.medfee_total_fen, "medfee_total_fen"),
                            (r.fund_pay_fen, "fund_pay_fen"),
                            (r.personal_burden_fen, "personal_burden_fen")):  # fmt: skip
            ids.amount(value, name, allow_zero=True)
        if r.medfee_total_fen != r.fund_pay_fen + r.personal_burden_fen:
            raise DomainError("INVALID_AMOUNT", "medfee_total_fen must be fund + personal burden")
        today = beijing_today(self.clock)
        day = today
        if r.service_date:
            first = today - dt.timedelta(days=_SERVICE_DATE_DAYS)
            day = (
                ids.date_between(r.service_date, "service_date", first, today)
                if window else ids.date(r.service_date, "service_date")
            )  # fmt: skip
        bill = Bill(
            institution_id=ids.institution_id(r.institution_id),
            medins_setl_id=ids.token(r.medins_setl_id, "medins_setl_id", 30),
            patient_id=patient, credential_type=r.credential_type, agent_id=agent,
            medfee_total_fen=r.medfee_total_fen, fund_pay_fen=r.fund_pay_fen,
            personal_burden_fen=r.personal_burden_fen,
            use_personal_account=r.use_personal_account if r.HasField("use_personal_account")
            else True,
            use_family_aid=r.use_family_aid if r.HasField("use_family_aid") else True,
            service_date=day.isoformat(),
        )  # fmt: skip
        if holder != patient:  # S1: the patient presents his own credential
            raise DomainError("CREDENTIAL_MISMATCH", "the credential is not the patient's own")
        return bill

    async def PreSettle(self, request: pb.SettleRequest, context: Context) -> pb.Settlement:
        bill = self._bill(request)
        if not self.registry.designated(bill.institution_id):
            raise _not_designated()
        return _shown(settlement_pb(await self.coordinator.quote(bill, Deadline.of(context))))

    async def Settle(self, request: pb.SettleRequest, context: Context) -> pb.Settlement:
        deadline = Deadline.of(context)
        replay_only: DomainError | None = None  # why only a key settled before may be replayed
        try:
            bill = self._bill(request)
        except DomainError as e:
            if e.reason != "INVALID_DATE" or not request.service_date:
                raise
            # Retried once its date is out of the window: a bill settled in time is answered
            # as it was made (S8); anything new is refused as it was.
            try:
                bill = self._bill(request, window=False)
            except DomainError:
                raise e from None
            replay_only = e
        if replay_only is None and not self.registry.designated(bill.institution_id):
            replay_only = _not_designated()
        if replay_only is not None:  # one look-up, whichever the reason
            await self._settled_before(bill.settlement_id, deadline, replay_only)
        return _shown(settlement_pb(await self.coordinator.settle(bill, deadline)))

    async def _settled_before(self, sid: str, deadline: Deadline, refusal: DomainError) -> None:
        """A key that may only be replayed (a delisted institution's, API.md "Partners
        registry"; a bill whose date is now out of the window): the replay answers the record
        as it stands; anything new is refused with `refusal`."""
        try:
            await self.coordinator.settlement(sid, deadline)
        except grpc.aio.AioRpcError as e:
            if reason_of(e) == "SETTLEMENT_NOT_FOUND":
                raise refusal from None
            raise
        except DomainError as e:
            if e.reason == "SETTLEMENT_NOT_FOUND":
                raise refusal from None
            raise

    async def institution_of(
        self, request: pb.CancelSettlementRequest, context: Context
    ) -> list[str]:
        """Whose settlement a CancelSettlement names: its institution's (access)."""
        sid = given_settlement_id(request.settlement_id)
        found = await self.coordinator.settlement(sid, Deadline.of(context))
        return [settlement_pb(found).institution_id]

    async def CancelSettlement(
        self, request: pb.CancelSettlementRequest, context: Context
    ) -> pb.Settlement:
        sid = given_settlement_id(request.settlement_id)
        reason = ids.text(request.reason, "reason", required=False)
        deadline = Deadline.of(context)

        async def run(fp: str, marker: str) -> pb.Settlement:
            rid = request.request_id
            return settlement_pb(await self.coordinator.cancel(sid, reason, rid, deadline))

        return _shown(
            await self.requests.once("CancelSettlement", request, pb.Settlement, run, context)
        )

    async def ReverseSettlement(
        self, request: pb.ReverseSettlementRequest, context: Context
    ) -> pb.ReverseSettlementResponse:
        inst = ids.institution_id(request.institution_id)
        medins = ids.token(request.medins_setl_id, "medins_setl_id", 30)
        deadline = Deadline.of(context)

        async def run(fp: str, marker: str) -> pb.ReverseSettlementResponse:
            found = await self.coordinator.reverse(inst, medins, request.request_id, deadline)
            if found is None:  # S10: it never arrived; now it never will
                return pb.ReverseSettlementResponse(settlement_existed=False)
            return pb.ReverseSettlementResponse(
                settlement_existed=True, settlement=settlement_pb(found)
            )

        answer = await self.requests.once(
            "ReverseSettlement", request, pb.ReverseSettlementResponse, run, context
        )
        if not answer.settlement_existed:
            return answer
        return pb.ReverseSettlementResponse(
            settlement_existed=True, settlement=_shown(answer.settlement)
        )

    async def GetSettlement(
        self, request: pb.GetSettlementRequest, context: Context
    ) -> pb.Settlement:
        if bool(request.settlement_id) == bool(request.institution_id or request.medins_setl_id):
            raise DomainError(
                "INVALID_ARGUMENT", "set settlement_id, or institution_id with medins_setl_id"
            )
        if request.settlement_id:
            sid = given_settlement_id(request.settlement_id)
        else:
            inst = ids.institution_id(request.institution_id)
            sid = settlement_id(inst, ids.token(request.medins_setl_id, "medins_setl_id", 30))
        return _shown(settlement_pb(await self.coordinator.settlement(sid, Deadline.of(context))))

    async def ListSettlements(
        self, request: pb.ListSettlementsRequest, context: Context
    ) -> pb.ListSettlementsResponse:
        if bool(request.patient_id) == bool(request.payer_id):
            raise DomainError("INVALID_ARGUMENT", "set exactly one of patient_id, payer_id")
        by = "patient" if request.patient_id else "payer"
        pid = self._pid(request.patient_id or request.payer_id, f"{by}_id")
        size = ids.page_size(request.page_size)
        offset = ids.page_token(request.page_token, _MAX_OFFSET) if request.page_token else 0
        query = apb.ListPaymentsRequest(offset=offset, limit=size)
        setattr(query, f"{by}_id", pid)
        if request.HasField("start_time"):
            query.start_time.CopyFrom(request.start_time)
        if request.HasField("end_time"):
            query.end_time.CopyFrom(request.end_time)
        listed = await self.coordinator.accounts.payments(query, Deadline.of(context).left())
        more = listed.more and offset + size <= _MAX_OFFSET
        return pb.ListSettlementsResponse(
            settlements=[_shown(settlement_pb(p)) for p in listed.payments],
            next_page_token=str(offset + size) if more else "",
        )

    async def PayResidentPremium(
        self, request: pb.PayResidentPremiumRequest, context: Context
    ) -> pb.PremiumPayment:
        payer = self._pid(request.payer_id, "payer_id")
        beneficiary = self._pid(request.beneficiary_id, "beneficiary_id")
        amount = ids.amount(request.amount_fen)
        kind = ids.enum_value(request.kind, {0, *PremiumKind}, "kind") or (
            PremiumKind.RESIDENT_MEDICAL
        )
        request.kind = kind  # type: ignore[assignment]  # unset is resident medical: one request
        today = beijing_today(self.clock)
        order = PremiumOrder(payer, beneficiary, request.year, amount, kind)
        deadline = Deadline.of(context)

        async def run(fp: str, marker: str) -> pb.PremiumPayment:
            # Judged against today only for a request not answered before: a retry in the
            # new year gets the premium it paid, not INVALID_ARGUMENT for a year now past.
            if request.year not in (today.year, today.year + 1):
                raise DomainError("INVALID_ARGUMENT", "year must be this year or next")
            payment = await self.coordinator.pay_premium(
                order, marker, today.isoformat(), deadline, from_quota=payer != beneficiary
            )
            return premium_pb(payment)

        return await self.requests.once(
            "PayResidentPremium", request, pb.PremiumPayment, run, context
        )


async def build(settings: Settings, clock: Clock | None = None) -> App:
    fault = settings.fault_plan
    security = Security.of(settings)
    redis = redisdb.connect(settings.redis_url, pointed=fault is not None, mode=settings.redis_mode)
    tracing = Tracing.of(settings.service, settings.traces_exporter)
    account_channel = channels.peer_channel(
        settings.account_addr, security, pointed=fault is not None, tracing=tracing
    )
    coordinator = Coordinator(AccountClient(account_channel))
    servicer = SettlementServicer(
        coordinator, Requests(redis, "setl"), clock or SystemClock(),
        registry.load(settings.registry_file), policy.load(settings.policy_file),
    )  # fmt: skip

    async def close() -> None:
        await servicer.requests.detached.drain()
        await account_channel.close()
        await redis.aclose()

    service = Service(SERVICE_NAME, pb_grpc.add_SettlementServiceServicer_to_server, servicer)
    return App(
        services=[service], close=close, fault=fault, security=security,
        resolvers={"CancelSettlement": servicer.institution_of,
                   "SetPremiumAutoPay": servicer.autopay_parties},
        redis=redis, tracing=tracing,
        on_drain=[servicer.draining.set],
    )  # fmt: skip
