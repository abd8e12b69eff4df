"""SettlementService: validates bills and hands them to the coordinator."""

from __future__ import annotations

from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from gongji.settlement.v1 import settlement_pb2 as pb
from gongji.settlement.v1 import settlement_pb2_grpc as pb_grpc
from services.account.client import AccountClient
from services.binding.client import BindingClient
from services.common import channels, ids, redisdb
from services.common.clock import Clock, SystemClock, beijing_today
from services.common.config import Settings
from services.common.errors import DomainError
from services.common.idempotency import Requests
from services.common.locks import Locks
from services.common.rpc import fingerprint, remaining
from services.common.server import App, Service
from services.settlement.convert import settlement_pb
from services.settlement.coordinator import Bill, Coordinator, settlement_id
from services.settlement.premium import Premiums
from services.settlement.recovery import Sweeper
from services.settlement.store import TOMBSTONE, SettlementStore

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["SettlementService"].full_name
Context = Any
_CREDENTIALS = frozenset({1, 2, 3})
_FAR_FUTURE_MS = 253402300799000


class SettlementServicer(pb_grpc.SettlementServiceServicer):
    def __init__(self, coordinator: Coordinator, premiums: Premiums, clock: Clock) -> None:
        self.coordinator, self.premiums, self.clock = coordinator, premiums, clock
        self.store = coordinator.store
        self.requests = Requests(self.store.redis, "setl")

    def _pid(self, value: str, field: str) -> str:
        return ids.person_id(value, beijing_today(self.clock), field)

    def _bill(self, r: pb.SettleRequest) -> Bill:
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
        day = r.service_date or beijing_today(self.clock).isoformat()
        ids.date(day, "service_date")
        bill = Bill(
            institution_id=ids.institution_id(r.institution_id),
            medins_setl_id=ids.token(r.medins_setl_id, "medins_setl_id", 30),
            patient_id=patient, credential_type=r.credential_type, agent_id=agent,
            medfee_total_fen=r.medfee_total_fen, fund_pay_fen=r.fund_pay_fen,
            personal_burden_fen=r.personal_burden_fen,
            use_personal_account=r.use_personal_account if r.HasField("use_personal_account")
            else True,
            use_family_aid=r.use_family_aid if r.HasField("use_family_aid") else True,
            service_date=day,
        )  # fmt: skip
        if holder != patient:  # S1: the patient presents his own credential
            raise DomainError("CREDENTIAL_MISMATCH", "the credential is not the patient's own")
        return bill

    async def PreSettle(self, request: pb.SettleRequest, context: Context) -> pb.Settlement:
        return settlement_pb(await self.coordinator.quote(self._bill(request)))

    async def Settle(self, request: pb.SettleRequest, context: Context) -> pb.Settlement:
        bill = self._bill(request)
        journal = await self.coordinator.settle(bill, fingerprint(request), remaining(context))
        return settlement_pb(journal)

    async def CancelSettlement(
        self, request: pb.CancelSettlementRequest, context: Context
    ) -> pb.Settlement:
        sid = ids.token(request.settlement_id, "settlement_id")
        reason = ids.text(request.reason, "reason", required=False)
        rid = ids.request_id(request.request_id)
        return settlement_pb(await self.coordinator.cancel(sid, reason, rid, remaining(context)))

    async def ReverseSettlement(
        self, request: pb.ReverseSettlementRequest, context: Context
    ) -> pb.ReverseSettlementResponse:
        inst = ids.institution_id(request.institution_id)
        medins = ids.token(request.medins_setl_id, "medins_setl_id", 30)
        rid = ids.request_id(request.request_id)
        held_by = await self.store.tombstone(inst, medins)
        if held_by is None or held_by == TOMBSTONE:  # S10: it never arrived; now it never will
            return pb.ReverseSettlementResponse(settlement_existed=False)
        found = await self.store.load(settlement_id(inst, medins))
        if found is None:  # claimed by a Settle that has not written its journal yet
            raise DomainError("SETTLEMENT_IN_PROGRESS", "this settlement is still in flight")
        journal = found
        if journal["status"] == 3:
            journal = await self.coordinator.cancel(
                journal["settlement_id"], "reversal", rid, remaining(context)
            )
        elif journal["status"] in (2, 6):
            raise DomainError("SETTLEMENT_IN_PROGRESS", "this settlement is still in flight")
        return pb.ReverseSettlementResponse(
            settlement_existed=True, settlement=settlement_pb(journal)
        )

    async def _journal(self, inst: str, medins: str) -> dict[str, Any]:
        journal = await self.store.load(settlement_id(inst, medins))
        if journal is None:
            raise DomainError("SETTLEMENT_NOT_FOUND", "no such settlement")
        return journal

    async def GetSettlement(
        self, request: pb.GetSettlementRequest, context: Context
    ) -> pb.Settlement:
        if bool(request.settlement_id) == bool(request.institution_id or request.medins_setl_id):
            raise DomainError(
                "INVALID_ARGUMENT", "set settlement_id, or institution_id with medins_setl_id"
            )
        if request.settlement_id:
            journal = await self.store.load(ids.token(request.settlement_id, "settlement_id"))
        else:
            inst = ids.institution_id(request.institution_id)
            medins = ids.token(request.medins_setl_id, "medins_setl_id", 30)
            journal = await self._journal(inst, medins)
        if journal is None:
            raise DomainError("SETTLEMENT_NOT_FOUND", "no such settlement")
        return settlement_pb(journal)

    async def ListSettlements(
        self, request: pb.ListSettlementsRequest, context: Context
    ) -> pb.ListSettlementsResponse:
        if bool(request.patient_id) == bool(request.payer_id):
            raise DomainError("INVALID_ARGUMENT", "set exactly one of patient_id, payer_id")
        by = "patient" if request.patient_id else "payer"
        pid = self._pid(request.patient_id or request.payer_id, f"{by}_id")
        size = ids.page_size(request.page_size)
        if request.page_token and not request.page_token.isdigit():
            raise DomainError("INVALID_ARGUMENT", "page_token is not one this service gave")
        offset = int(request.page_token or 0)
        start = _ms(request.start_time) if request.HasField("start_time") else 0
        end = _ms(request.end_time) if request.HasField("end_time") else _FAR_FUTURE_MS
        found = await self.store.listed(by, pid, start, end, offset, size + 1)
        journals = [j for j in [await self.store.load(s) for s in found[:size]] if j]
        return pb.ListSettlementsResponse(
            settlements=[settlement_pb(j) for j in journals],
            next_page_token=str(offset + size) if len(found) > size else "",
        )

    async def PayResidentPremium(
        self, request: pb.PayResidentPremiumRequest, context: Context
    ) -> pb.PremiumPayment:
        payer = self._pid(request.payer_id, "payer_id")
        beneficiary = self._pid(request.beneficiary_id, "beneficiary_id")
        amount = ids.amount(request.amount_fen)
        today = beijing_today(self.clock)
        if request.year not in (today.year, today.year + 1):
            raise DomainError("INVALID_ARGUMENT", "year must be this year or next")

        async def run(fp: str, idem: str) -> pb.PremiumPayment:
            return await self.premiums.pay(
                payer, beneficiary, request.year, amount, today.isoformat(), remaining(context)
            )

        return await self.requests.once("PayResidentPremium", request, pb.PremiumPayment, run)


def _ms(t: Timestamp) -> int:
    return t.seconds * 1000 + t.nanos // 1_000_000


async def build(settings: Settings, clock: Clock | None = None) -> App:
    redis = redisdb.connect(settings.redis_url)
    account_channel = channels.channel(settings.account_addr)
    binding_channel = channels.channel(settings.binding_addr)
    accounts, bindings = AccountClient(account_channel), BindingClient(binding_channel)
    locks = Locks(redis, settings.lock_lease_ms)
    coordinator = Coordinator(
        SettlementStore(redis), accounts, bindings, locks, settings.recovery_after_ms,
        settings.faults,
    )  # fmt: skip
    servicer = SettlementServicer(coordinator, Premiums(coordinator), clock or SystemClock())

    async def close() -> None:
        await account_channel.close()
        await binding_channel.close()
        await redis.aclose()

    service = Service(SERVICE_NAME, pb_grpc.add_SettlementServiceServicer_to_server, servicer)
    return App(services=[service], background=[Sweeper(coordinator).run], close=close)
