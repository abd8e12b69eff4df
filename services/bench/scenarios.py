"""What `gongji bench` runs: families made through the public API, and one operation each.

- `echo`: grpc.health.v1 Check of a bare grpc.aio server, the yardstick.
- `settle`: uncontended Settle, each caller with a family of its own (a payer and a child).
- `hot`: one payer and ten children, every caller settling for one of them at random.
- `mix`: what a day looks like: pre-settle, settle, cancel, premium, bind and unbind, credit.
- `quota`: uncontended Settle drawing an aid quota across provinces, each caller with a funder
  in Changsha and his father in Xianyang, who settles at Xianyang's hospital (N3, N6).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
import secrets
from collections.abc import Awaitable, Callable

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gongji.account.v1 import account_pb2 as apb
from gongji.account.v1 import account_pb2_grpc
from gongji.binding.v1 import binding_pb2 as bpb
from gongji.binding.v1 import binding_pb2_grpc
from gongji.common.v1 import common_pb2 as cpb
from gongji.settlement.v1 import settlement_pb2 as spb
from gongji.settlement.v1 import settlement_pb2_grpc
from services.common.ids import make_person_id

INSTITUTION = "H43010500001"
XIANYANG_INSTITUTION = "H61040000001"  # designated in config/registry.toml
PAYER_FEN = 10**10  # enough never to run dry
TIMEOUT_S = 10.0
CHILD, SPOUSE = cpb.RELATIONSHIP_CHILD, cpb.RELATIONSHIP_SPOUSE


@dataclasses.dataclass
class Stubs:
    account: account_pb2_grpc.AccountServiceStub
    binding: binding_pb2_grpc.BindingServiceStub
    settlement: settlement_pb2_grpc.SettlementServiceStub
    echo: health_pb2_grpc.HealthStub

    @classmethod
    def over(cls, channels: dict[str, grpc.aio.Channel]) -> Stubs:
        return cls(
            account_pb2_grpc.AccountServiceStub(channels["account"]),
            binding_pb2_grpc.BindingServiceStub(channels["binding"]),
            settlement_pb2_grpc.SettlementServiceStub(channels["settlement"]),
            health_pb2_grpc.HealthStub(channels["echo"]),
        )


def rid() -> str:
    return secrets.token_hex(12)


class People:
    """Fresh valid person ids, unlikely to meet the data already there."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def new(self, born: int, region: str = "430102") -> str:
        day = dt.date(born, 1, 1) + dt.timedelta(days=self.rng.randrange(365))
        return make_person_id(region, day, self.rng.randrange(1000))

    async def open(
        self, s: Stubs, born: int, fen: int = 0, resident: bool = False, region: str = "430102"
    ) -> str:
        kind = cpb.INSURANCE_TYPE_RESIDENT if resident else cpb.INSURANCE_TYPE_EMPLOYEE
        while True:
            pid = self.new(born, region)
            try:
                await s.account.OpenAccount(apb.OpenAccountRequest(
                    person_id=pid, name="测试", insurance_type=kind, region_code=region,
                    request_id=rid()), timeout=TIMEOUT_S)  # fmt: skip
                break
            except grpc.aio.AioRpcError as e:
                if e.code() != grpc.StatusCode.ALREADY_EXISTS:
                    raise
        if fen:
            await credit(s, pid, fen)
        return pid


async def credit(s: Stubs, pid: str, fen: int) -> None:
    request = apb.CreditRequest(person_id=pid, amount_fen=fen, request_id=rid(),
                                kind=apb.CREDIT_KIND_MONTHLY_ALLOCATION, memo="bench")  # fmt: skip
    await s.account.Credit(request, timeout=TIMEOUT_S)


async def bind(
    s: Stubs, binder: str, beneficiary: str, relationship: cpb.Relationship.ValueType = CHILD
) -> str:
    request = bpb.CreateBindingRequest(binder_id=binder, beneficiary_id=beneficiary,
                                       relationship=relationship, request_id=rid())  # fmt: skip
    made: bpb.Binding = await s.binding.CreateBinding(request, timeout=TIMEOUT_S)
    return made.binding_id


def bill(patient: str, fen: int, institution: str = INSTITUTION) -> spb.SettleRequest:
    return spb.SettleRequest(
        institution_id=institution, medins_setl_id="B" + rid()[:20], patient_id=patient,
        credential_type=spb.CREDENTIAL_TYPE_MEDICAL_CODE, credential_holder_id=patient,
        medfee_total_fen=fen * 3, fund_pay_fen=fen * 2, personal_burden_fen=fen,
    )  # fmt: skip


Operation = Callable[[int, random.Random], Awaitable[object]]


async def echo(s: Stubs, callers: int, people: People) -> Operation:
    request = health_pb2.HealthCheckRequest()
    return lambda i, rng: s.echo.Check(request, timeout=TIMEOUT_S)


async def settle(s: Stubs, callers: int, people: People) -> Operation:
    children = []
    for _ in range(callers):
        payer, child = await people.open(s, 1960, PAYER_FEN), await people.open(s, 1990)
        await bind(s, payer, child)
        children.append(child)
    return lambda i, rng: s.settlement.Settle(bill(children[i], rng.randrange(1, 5_000)),
                                              timeout=TIMEOUT_S)  # fmt: skip


async def quota(s: Stubs, callers: int, people: People) -> Operation:
    fathers = []
    for _ in range(callers):
        funder = await people.open(s, 1985, PAYER_FEN)
        father = await people.open(s, 1955, resident=True, region="610402")
        grant = bpb.GrantQuotaRequest(
            funder_id=funder,
            relative_id=father,
            amount_fen=PAYER_FEN,
            relationship=cpb.RELATIONSHIP_PARENT,
            request_id=rid(),
        )
        await s.binding.GrantQuota(grant, timeout=TIMEOUT_S)
        fathers.append(father)
    return lambda i, rng: s.settlement.Settle(
        bill(fathers[i], rng.randrange(1, 5_000), XIANYANG_INSTITUTION), timeout=TIMEOUT_S
    )


async def hot(s: Stubs, callers: int, people: People) -> Operation:
    payer = await people.open(s, 1960, PAYER_FEN)
    children = [await people.open(s, 1990) for _ in range(10)]
    for child in children:
        await bind(s, payer, child)
    return lambda i, rng: s.settlement.Settle(bill(rng.choice(children), rng.randrange(1, 5_000)),
                                              timeout=TIMEOUT_S)  # fmt: skip


async def mix(s: Stubs, callers: int, people: People) -> Operation:
    """Per caller a family (payer, child, spouse, resident kids); each call one of the day's
    operations, drawn by weight."""
    families = [await Family.make(s, people) for _ in range(callers)]

    async def one(i: int, rng: random.Random) -> object:
        f, dice = families[i], rng.random()
        if dice < 0.35:
            return await f.settle(s, rng)
        if dice < 0.50:
            return await s.settlement.PreSettle(bill(f.child, 100), timeout=TIMEOUT_S)
        if dice < 0.60 and f.settled:
            cancel = spb.CancelSettlementRequest(settlement_id=f.settled.pop(), request_id=rid())
            return await s.settlement.CancelSettlement(cancel, timeout=TIMEOUT_S)
        if dice < 0.65 and f.kids:
            return await f.premium(s)
        if dice < 0.75:
            return await f.bind_or_unbind(s)
        await credit(s, f.payer, rng.randrange(1, 10_000))
        return None

    return one


@dataclasses.dataclass
class Family:
    payer: str
    child: str
    spouse: str
    kids: list[str]
    settled: list[str] = dataclasses.field(default_factory=list)
    spouse_binding: str = ""

    @classmethod
    async def make(cls, s: Stubs, people: People) -> Family:
        payer, child = await people.open(s, 1960, PAYER_FEN), await people.open(s, 1990)
        spouse = await people.open(s, 1962)
        kids = [await people.open(s, 2012, resident=True) for _ in range(8)]  # B4: 10 in all
        for beneficiary in (child, *kids):
            await bind(s, payer, beneficiary)
        return cls(payer, child, spouse, kids)

    async def settle(self, s: Stubs, rng: random.Random) -> object:
        done = await s.settlement.Settle(bill(self.child, rng.randrange(1, 5_000)),
                                         timeout=TIMEOUT_S)  # fmt: skip
        self.settled.append(done.settlement_id)
        return done

    async def premium(self, s: Stubs) -> object:
        request = spb.PayResidentPremiumRequest(
            payer_id=self.payer, beneficiary_id=self.kids.pop(), amount_fen=40_000,
            year=dt.date.today().year, request_id=rid(),
        )  # fmt: skip
        return await s.settlement.PayResidentPremium(request, timeout=TIMEOUT_S)

    async def bind_or_unbind(self, s: Stubs) -> object:
        if self.spouse_binding:
            removal = bpb.RemoveBindingRequest(binding_id=self.spouse_binding, request_id=rid())
            self.spouse_binding = ""
            return await s.binding.RemoveBinding(removal, timeout=TIMEOUT_S)
        self.spouse_binding = await bind(s, self.payer, self.spouse, SPOUSE)
        return self.spouse_binding


SCENARIOS = {"echo": echo, "settle": settle, "hot": hot, "mix": mix, "quota": quota}
