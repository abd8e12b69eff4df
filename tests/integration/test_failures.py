"""What callers see when a dependency is down or an account is busy: retryable statuses."""

import asyncio

import grpc

from gongji.account.v1 import account_pb2 as pb
from gongji.account.v1 import account_pb2_grpc
from gongji.settlement.v1 import settlement_pb2_grpc
from services.account.locks import Locks
from services.account.server import build
from services.account.store import AccountStore
from services.common.redisdb import free_port
from services.settlement.server import build as build_settlement
from tests.integration.accounts import get, open_account, rid
from tests.integration.test_settlement import bill, family
from tests.support import refused, serving, settings


async def test_an_unreachable_redis_is_unavailable_and_retryable(redis):
    app = await build(settings(f"redis://127.0.0.1:{free_port()}/0"))
    async with serving(app) as (channel, _):
        stub = account_pb2_grpc.AccountServiceStub(channel)
        call = stub.GetAccount(pb.GetAccountRequest(person_id="430102198005170012"))
        assert await refused(call) == (grpc.StatusCode.UNAVAILABLE, "DEPENDENCY_UNAVAILABLE")


async def test_a_deduction_on_a_locked_account_times_out_with_lock_timeout(account, redis):
    pid = await open_account(account, 10_000)
    request = pb.PurchaseCommercialInsuranceRequest(
        person_id=pid, amount_fen=100, insurer_code="PICC-HN", policy_no="P-busy", request_id=rid()
    )
    async with Locks(AccountStore(redis), lease_ms=5_000).hold([pid], wait_s=1):
        outcome = await refused(account.PurchaseCommercialInsurance(request, timeout=1.0))
    assert outcome == (grpc.StatusCode.ABORTED, "LOCK_TIMEOUT")
    assert (await get(account, pid)).balance_fen == 10_000
    assert (await account.PurchaseCommercialInsurance(request, timeout=5)).amount_fen == -100


class _Silent(account_pb2_grpc.AccountServiceServicer):
    """An account service that notes how long each PayFromAccounts may take, and never answers."""

    def __init__(self) -> None:
        self.allowed: list[float] = []

    async def PayFromAccounts(self, request, context):  # type: ignore[no-untyped-def]
        self.allowed.append(context.time_remaining())
        await asyncio.Event().wait()


async def test_peer_calls_get_the_callers_deadline_not_a_fixed_one(account, binding, redis_url):
    silent = _Silent()
    server = grpc.aio.server()
    account_pb2_grpc.add_AccountServiceServicer_to_server(silent, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        app = await build_settlement(settings(redis_url, "settlement",
                                              account_addr=f"127.0.0.1:{port}"))  # fmt: skip
        async with serving(app) as (channel, _):
            stub = settlement_pb2_grpc.SettlementServiceStub(channel)
            child, _, _ = await family(account, binding)
            outcome = await refused(stub.Settle(bill(child, 100), timeout=1.0))
            # the settlement service gives up on the account in time to say so itself
            assert outcome == (grpc.StatusCode.UNAVAILABLE, "DEPENDENCY_UNAVAILABLE")
            assert 0.5 < silent.allowed[-1] < 1.0, silent.allowed  # not a fixed 5 s
    finally:
        await server.stop(0)
