"""Who may call what (API.md "Authentication"): every RPC of every service, called by every role.

For each RPC a case sets up what the call needs (through a service's token) and names the
person and institution it belongs to. Each role then calls it with a token for that owner:
a role the table allows must get its answer; any other is refused with PERMISSION_DENIED and
the data store is left as it was. Further tests: other people's records, bad tokens, and the
designated institutions of the partners registry.
"""

from __future__ import annotations

import datetime as dt
import pathlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import jwt
import pytest
import redis.asyncio as aioredis
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gongji.account.v1 import account_pb2 as pb
from gongji.binding.v1 import binding_pb2 as bpb
from gongji.settlement.v1 import settlement_pb2 as spb
from services.common import access
from tests.integration.accounts import rid
from tests.integration.bindings import CHILD, create, person
from tests.integration.test_settlement import HOSPITAL, bill
from tests.rpc_cases import CASES, Case, World, answer, bound_family
from tests.support import SECRET_FILE, STUBS, as_, bearer, channel, footprint, new_pid, refused

OTHER_HOSPITAL = "H43010500002"
SECRET = pathlib.Path(SECRET_FILE).read_bytes().strip()
CIT, INST, OP = "citizen", "institution", "operator"
DENIED = (grpc.StatusCode.PERMISSION_DENIED, "PERMISSION_DENIED")

# API.md's table, written out per RPC: the roles besides `service` that may call it.
EXPECTED: dict[str, set[str]] = {
    "OpenAccount": {OP},
    "GetAccount": {CIT, OP},
    "BatchGetAccounts": {CIT, OP},
    "Credit": {OP},
    "ListEntries": {CIT, OP},
    "SuspendAccount": {OP},
    "ResumeAccount": {OP},
    "PurchaseCommercialInsurance": {OP},
    "CancelCommercialInsurance": {OP},
    "WithdrawBalance": {OP},
    "TransferAccount": {OP},
    "RecordContribution": {OP},
    "GetContributionRecord": {CIT, OP},
    "StopInsurance": {OP},
    "ChangeInsuranceType": {OP},
    # how the services move money between themselves: services only (README, "Who may call what")
    "PayFromAccounts": set(),
    "GetPayment": set(),
    "ListPayments": set(),
    "CancelPayment": set(),
    "ReversePayment": set(),
    "GrantFamilyAid": set(),
    "RevokeFamilyAid": set(),
    "SetFamilyAidOrder": set(),
    "FollowEntries": set(),  # the settlement service's way into a ledger for WatchPayments
    "OpenQuota": set(),  # a quota's money state, for the binding service (N1-N5)
    "ChangeQuotaAmount": set(),
    "CloseQuota": set(),
    "ActivateQuota": set(),
    "GetQuotas": set(),
    "ListDayPayments": set(),  # a day's and a month's settlements, for the settlement service
    "ListClearingPayments": set(),
    "GrantQuota": {CIT, OP},
    "ChangeQuota": {CIT, OP},
    "EndQuota": {CIT, OP},
    "GetQuota": {CIT, OP},
    "ListQuotas": {CIT, OP},
    "ConfirmQuota": {CIT, OP},
    "GetClearingStatement": {OP},
    "ReconcileDay": {INST, OP},
    "CreateBinding": {CIT, OP},
    "RemoveBinding": {CIT, OP},
    "GetBinding": {CIT, OP},
    "ListBindings": {CIT, OP},
    "GetPayers": {CIT, OP},
    "SetPayerOrder": {CIT, OP},
    "ConfirmBinding": {CIT, OP},
    "PreSettle": {INST, OP},
    "Settle": {INST, OP},
    "CancelSettlement": {INST, OP},
    "ReverseSettlement": {INST, OP},
    "GetSettlement": {INST, CIT, OP},
    "ListSettlements": {INST, CIT, OP},
    "PayResidentPremium": {CIT, OP},
    "SetPremiumAutoPay": {CIT, OP},
    "GetPremiumAutoPay": {OP},
    "RunPremiumDeductions": {OP},
    "WatchPayments": {CIT, OP},
}


# Every RPC the three protos declare, from their descriptors: a new one without a row in
# EXPECTED, CASES and the access table fails the tests below.
RPCS = sorted(
    m.name
    for module, name in ((pb, "AccountService"), (bpb, "BindingService"),
                         (spb, "SettlementService"))
    for m in module.DESCRIPTOR.services_by_name[name].methods
)  # fmt: skip


def test_every_rpc_of_every_service_has_its_row():
    assert set(RPCS) == set(EXPECTED) == set(CASES) == set(access.TABLE)


# How a stranger names himself in a request that is about someone else, where a field lets
# him: the request then names him too, and must still be refused (access is judged from what is
# stored, and from every alternative the request sets).
SPOOFS: dict[str, Callable[[Any, str], None]] = {
    "BatchGetAccounts": lambda r, me: r.person_ids.append(me),
    "ListBindings": lambda r, me: setattr(r, "beneficiary_id", me),
    "SetPayerOrder": lambda r, me: r.binder_ids.append(me),
    "ListSettlements": lambda r, me: setattr(r, "payer_id", me),
    "SetPremiumAutoPay": lambda r, me: setattr(r, "payer_id", me),
}
# What another institution gets where the table filters instead of refusing.
FILTERED = {("ListSettlements", INST): lambda answer: not answer.settlements}


async def call(
    addresses: dict[str, str], rpc: str, case: Case, role: str, sub: str, request: Any = None
) -> Any:
    async with channel(addresses[case.service], role, sub) as ch:
        return await answer(STUBS[case.service](ch), rpc, request or case.request)


def _subject(role: str, case: Case) -> str:
    return {CIT: case.person, INST: case.institution, OP: "staff-0427", "service": "tests"}[role]


def _stranger(role: str) -> str:
    """A subject of the same role that the case's records do not belong to."""
    return {CIT: new_pid(), INST: OTHER_HOSPITAL, OP: "staff-0999", "service": "elsewhere"}[role]


def _answers(rpc: str, role: str, own: bool) -> bool:
    """Whether the table lets `role` call `rpc` about his own subject or another's."""
    if role == "service":
        return True
    return role in EXPECTED[rpc] and (own or role == OP)


@pytest.mark.parametrize("rpc", RPCS)
async def test_each_role_reaches_what_the_table_says_for_its_own_subjects_only(
    rpc, account, binding, settlement, addresses, raw
):  # API.md "Authentication and access": access before validation
    """Every RPC x every role x (another's subject, then his own): a refusal is
    PERMISSION_DENIED before any argument check, and changes nothing."""
    world = World(account, binding, settlement, addresses)
    for role in (INST, CIT, OP, "service"):
        case = await CASES[rpc](world)
        for own in (False, True):
            sub = _subject(role, case) if own else _stranger(role)
            request = type(case.request)()
            request.CopyFrom(case.request)
            if not own and role == CIT and rpc in SPOOFS:
                SPOOFS[rpc](request, sub)
            await _expect(addresses, raw, rpc, case, role, sub, request, own)


async def _expect(
    addresses: dict[str, str], raw: aioredis.Redis, rpc: str, case: Case, role: str, sub: str,
    request: Any, own: bool,
) -> None:  # fmt: skip
    whose = "own" if own else "another's"
    if _answers(rpc, role, own):
        await call(addresses, rpc, case, role, sub, request)  # answers, or raises
        return
    before = await footprint(raw, request, case.person)
    assert before or rpc == "OpenAccount", "the footprint must see the case's records"
    if (rpc, role) in FILTERED:
        got = await call(addresses, rpc, case, role, sub, request)
        assert FILTERED[rpc, role](got), f"{role} sees another's records through {rpc}"
    else:
        outcome = await refused(call(addresses, rpc, case, role, sub, request))
        assert outcome == DENIED, f"{role} calling {rpc} on {whose} subject: {outcome}"
    assert await footprint(raw, request, case.person) == before, f"a refused {rpc} changed data"


async def test_a_citizen_reaches_only_his_own_records(account, binding, settlement, addresses):
    child, dad, mum, first = await bound_family(World(account, binding, settlement))
    stranger = await person(account, 1985)

    async def citizen(who: str, service: str, rpc: str, request: Any) -> Any:
        return await as_(addresses, service, CIT, who, rpc, request)

    for rpc, request in (
        ("GetAccount", pb.GetAccountRequest(person_id=dad)),
        ("BatchGetAccounts", pb.BatchGetAccountsRequest(person_ids=[stranger, dad])),
        ("ListEntries", pb.ListEntriesRequest(person_id=dad)),
    ):
        assert await refused(citizen(stranger, "account", rpc, request)) == DENIED, rpc
    # binding: he binds as the binder only, and touches only bindings he is a party to
    assert (
        await refused(citizen(stranger, "binding", "CreateBinding", create(dad, stranger, CHILD)))
        == DENIED
    )
    for rpc, request in (
        ("RemoveBinding", bpb.RemoveBindingRequest(binding_id=first.binding_id, request_id=rid())),
        ("GetBinding", bpb.GetBindingRequest(binding_id=first.binding_id)),
        ("ListBindings", bpb.ListBindingsRequest(beneficiary_id=child)),
        ("GetPayers", bpb.GetPayersRequest(beneficiary_id=child)),
        (
            "SetPayerOrder",
            bpb.SetPayerOrderRequest(beneficiary_id=child, binder_ids=[mum, dad], request_id=rid()),
        ),
        (  # access before validation: his own name in a list that is wrong anyway
            "SetPayerOrder",
            bpb.SetPayerOrderRequest(
                beneficiary_id=child, binder_ids=[stranger, "not an id"], request_id=rid()
            ),
        ),
    ):
        assert await refused(citizen(stranger, "binding", rpc, request)) == DENIED, rpc
    assert (
        await citizen(
            child, "binding", "GetBinding", bpb.GetBindingRequest(binding_id=first.binding_id)
        )
    ).binder_id == dad
    # settlements: the patient and each payer of a leg read it; nobody else does
    paid = await settlement.Settle(bill(child, 8_000), timeout=10)  # own 10,000 pays it all
    shared = await settlement.Settle(bill(child, 5_000), timeout=10)  # own 2,000 + dad 3,000
    assert [leg.payer_id for leg in shared.legs] == [child, dad]
    by_id = spb.GetSettlementRequest(settlement_id=shared.settlement_id)
    for reader in (child, dad):  # each sees every leg, and only his own balance after it
        legs = (await citizen(reader, "settlement", "GetSettlement", by_id)).legs
        assert [(leg.payer_id, leg.amount_fen) for leg in legs] == [
            (leg.payer_id, leg.amount_fen) for leg in shared.legs
        ]
        assert [leg.balance_after_fen for leg in legs if leg.payer_id != reader] == [0]
    assert await refused(citizen(mum, "settlement", "GetSettlement", by_id)) == DENIED
    assert (
        await refused(
            citizen(
                dad,
                "settlement",
                "GetSettlement",
                spb.GetSettlementRequest(settlement_id=paid.settlement_id),
            )
        )
        == DENIED
    )
    listed = await citizen(
        dad, "settlement", "ListSettlements", spb.ListSettlementsRequest(payer_id=dad)
    )
    assert [s.settlement_id for s in listed.settlements] == [shared.settlement_id]
    assert (
        await refused(
            citizen(
                dad, "settlement", "ListSettlements", spb.ListSettlementsRequest(patient_id=child)
            )
        )
        == DENIED
    )
    premium = spb.PayResidentPremiumRequest(
        payer_id=dad,
        beneficiary_id=child,
        year=dt.date.today().year,
        amount_fen=1,
        request_id=rid(),
    )
    assert await refused(citizen(child, "settlement", "PayResidentPremium", premium)) == DENIED
    # the beneficiary may end a binding made for him
    removed = await citizen(
        child,
        "binding",
        "RemoveBinding",
        bpb.RemoveBindingRequest(binding_id=first.binding_id, request_id=rid()),
    )
    assert removed.status == bpb.BINDING_STATUS_REMOVED


async def test_an_institution_reaches_only_its_own_settlements(
    account, binding, settlement, addresses
):
    patient = await person(account, 1980, 10_000)
    mine = await settlement.Settle(bill(patient, 1_000), timeout=10)

    async def other(rpc: str, request: Any) -> Any:
        return await as_(addresses, "settlement", INST, OTHER_HOSPITAL, rpc, request)

    for rpc, request in (
        ("GetSettlement", spb.GetSettlementRequest(settlement_id=mine.settlement_id)),
        (
            "GetSettlement",
            spb.GetSettlementRequest(institution_id=HOSPITAL, medins_setl_id=mine.medins_setl_id),
        ),
        (
            "CancelSettlement",
            spb.CancelSettlementRequest(
                settlement_id=mine.settlement_id, reason="x", request_id=rid()
            ),
        ),
        (
            "ReverseSettlement",
            spb.ReverseSettlementRequest(
                institution_id=HOSPITAL, medins_setl_id=mine.medins_setl_id, request_id=rid()
            ),
        ),
        ("Settle", bill(patient, 100)),
        ("PreSettle", bill(patient, 100)),
    ):
        assert await refused(other(rpc, request)) == DENIED, rpc
    by_patient = spb.ListSettlementsRequest(patient_id=patient)
    assert list((await other("ListSettlements", by_patient)).settlements) == []
    own = await as_(addresses, "settlement", INST, HOSPITAL, "ListSettlements", by_patient)
    assert [s.settlement_id for s in own.settlements] == [mine.settlement_id]
    still = await settlement.GetSettlement(
        spb.GetSettlementRequest(settlement_id=mine.settlement_id)
    )
    assert still.status == spb.SETTLEMENT_STATUS_SETTLED
    assert (await account.GetAccount(pb.GetAccountRequest(person_id=patient))).balance_fen == 9_000
    cancelled = await as_(
        addresses,
        "settlement",
        INST,
        HOSPITAL,
        "CancelSettlement",
        spb.CancelSettlementRequest(
            settlement_id=mine.settlement_id, reason="退费", request_id=rid()
        ),
    )
    assert cancelled.status == spb.SETTLEMENT_STATUS_CANCELLED


def _forged(**claims: Any) -> str:
    base = {"sub": "tests", "role": "service", "exp": int(dt.datetime.now().timestamp()) + 60}
    return "Bearer " + jwt.encode(
        {**base, **claims}, "another secret of 32 bytes or more!!", algorithm="HS256"
    )


def _signed(exp: object) -> str:
    """Signed with the stack's own secret: only its `exp` is wrong."""
    claims = {"sub": "tests", "role": "service", "exp": exp}
    return "Bearer " + jwt.encode(claims, SECRET, algorithm="HS256")


_SOON = int(dt.datetime.now().timestamp()) + 600


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Bearer",
        "Basic dXNlcjpwYXNz",
        "Bearer not.a.jwt",
        "bearer " + bearer()[7:],  # the scheme is case-sensitive
        _forged(),  # signed with another secret
        bearer(ttl_s=-1),  # expired
        "Bearer "
        + jwt.encode(
            {"sub": "tests", "role": "service", "exp": 4102444800}, None, algorithm="none"
        ),  # unsigned
        bearer(role="service")[:-4] + "AAAA",  # signature changed
        _signed(253402300799),  # runs out in 9999
        _signed(str(_SOON)),  # exp a string
        _signed(_SOON + 0.5),  # exp not a whole number
    ],
    ids=[
        "none",
        "empty",
        "no-token",
        "basic",
        "garbage",
        "scheme",
        "forged",
        "expired",
        "unsigned",
        "tampered",
        "far-future",
        "string-exp",
        "fractional-exp",
    ],
)
async def test_a_caller_without_a_valid_token_is_unauthenticated(header, addresses, account):
    pid = await person(account)
    metadata = None if header is None else (("authorization", header),)
    for service, rpc, request in (
        ("account", "GetAccount", pb.GetAccountRequest(person_id=pid)),
        ("binding", "GetPayers", bpb.GetPayersRequest(beneficiary_id=pid)),
        ("settlement", "ListSettlements", spb.ListSettlementsRequest(patient_id=pid)),
    ):
        async with grpc.aio.insecure_channel(addresses[service]) as ch:
            call = getattr(STUBS[service](ch), rpc)(request, metadata=metadata, timeout=5)
            assert await refused(call) == (grpc.StatusCode.UNAUTHENTICATED, "UNAUTHENTICATED")


async def test_a_token_for_an_unknown_role_is_unauthenticated(addresses):
    from services.common.auth import ALGORITHM

    claims = {"sub": "x", "role": "admin", "exp": int(dt.datetime.now().timestamp()) + 60}
    header = "Bearer " + jwt.encode(claims, SECRET, algorithm=ALGORITHM)
    async with grpc.aio.insecure_channel(addresses["account"]) as ch:
        call = STUBS["account"](ch).GetAccount(
            pb.GetAccountRequest(person_id=new_pid()), metadata=(("authorization", header),)
        )
        assert await refused(call) == (grpc.StatusCode.UNAUTHENTICATED, "UNAUTHENTICATED")


async def test_health_and_reflection_stay_open(addresses):
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    async with grpc.aio.insecure_channel(addresses["settlement"]) as ch:
        health = await health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest())
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        stream = reflection_pb2_grpc.ServerReflectionStub(ch).ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")])
        )
        names = [s.name async for r in stream for s in r.list_services_response.service]
        assert "gongji.settlement.v1.SettlementService" in names


@pytest.fixture(scope="module")
async def delisting(redis_url, account_addr, tmp_path_factory) -> AsyncIterator[Any]:
    """A settlement service whose registry has HOSPITAL delisted (designated = false)."""
    from services.settlement.server import build as build_settlement
    from tests.support import serving, settings

    registry = tmp_path_factory.mktemp("registry") / "registry.toml"
    registry.write_text(
        f'[institutions."{HOSPITAL}"]\nname = "delisted"\ndesignated = false\n'
        f'[institutions."{OTHER_HOSPITAL}"]\nname = "listed"\ndesignated = true\n'
    )
    app = await build_settlement(
        settings(redis_url, "settlement", account_addr=account_addr, registry_file=str(registry))
    )
    async with serving(app) as (_, port):
        yield f"127.0.0.1:{port}"


async def test_only_designated_institutions_settle_and_a_delisted_one_keeps_its_past(
    account, settlement, delisting
):  # the partners registry (API.md "Partners registry")
    patient = await person(account, 1980, 10_000)
    before = await settlement.Settle(bill(patient, 1_000), timeout=10)  # while designated
    after = {"settlement": delisting}
    fresh = bill(patient, 100)
    for role, sub in ((INST, HOSPITAL), (OP, "staff-0427")):
        for rpc in ("PreSettle", "Settle"):
            outcome = await refused(as_(after, "settlement", role, sub, rpc, fresh))
            assert outcome == (grpc.StatusCode.PERMISSION_DENIED, "INSTITUTION_NOT_DESIGNATED")
    unknown = bill(patient, 100, institution_id="H43019999999")
    outcome = await refused(
        as_({"settlement": delisting}, "settlement", OP, "s", "Settle", unknown)
    )
    assert outcome == (grpc.StatusCode.PERMISSION_DENIED, "INSTITUTION_NOT_DESIGNATED")
    assert (await account.GetAccount(pb.GetAccountRequest(person_id=patient))).balance_fen == 9_000
    # its past stays its own: the replay, the read, the cancel
    replay = bill(patient, 1_000, medins_setl_id=before.medins_setl_id)
    assert await as_(after, "settlement", INST, HOSPITAL, "Settle", replay) == before
    read = spb.GetSettlementRequest(settlement_id=before.settlement_id)
    assert await as_(after, "settlement", INST, HOSPITAL, "GetSettlement", read) == before
    cancel = spb.CancelSettlementRequest(
        settlement_id=before.settlement_id, reason="退费", request_id=rid()
    )
    cancelled = await as_(after, "settlement", INST, HOSPITAL, "CancelSettlement", cancel)
    assert cancelled.status == spb.SETTLEMENT_STATUS_CANCELLED
    reverse = spb.ReverseSettlementRequest(
        institution_id=HOSPITAL, medins_setl_id="never-sent", request_id=rid()
    )
    assert not (
        await as_(after, "settlement", INST, HOSPITAL, "ReverseSettlement", reverse)
    ).settlement_existed
