"""What callers see when a dependency is down or an account is busy: retryable statuses."""

import asyncio
import contextlib
import time

import grpc

from gongji.account.v1 import account_pb2 as pb
from gongji.account.v1 import account_pb2_grpc
from gongji.binding.v1 import binding_pb2_grpc
from gongji.settlement.v1 import settlement_pb2 as spb
from gongji.settlement.v1 import settlement_pb2_grpc
from services.account.locks import Locks
from services.account.server import build
from services.common.redisdb import free_port
from services.settlement.server import build as build_settlement
from tests.integration.accounts import get, open_account, rid
from tests.integration.test_settlement import HOSPITAL, bill, family
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
        person_id=pid, amount_fen=100, insurer_code="PICC", policy_no="P-busy", request_id=rid()
    )
    async with Locks(redis, lease_ms=5_000).hold([pid], wait_s=1):
        outcome = await refused(account.PurchaseCommercialInsurance(request, timeout=1.0))
    assert outcome == (grpc.StatusCode.ABORTED, "LOCK_TIMEOUT")
    assert (await get(account, pid)).balance_fen == 10_000
    assert (await account.PurchaseCommercialInsurance(request, timeout=5)).amount_fen == -100


class _Silent(binding_pb2_grpc.BindingServiceServicer):
    """A binding service that never answers GetPayers."""

    async def GetPayers(self, request, context):  # type: ignore[no-untyped-def]
        await asyncio.Event().wait()


async def test_peer_calls_get_the_callers_deadline_not_a_fixed_one(
    account, binding, redis_url, account_addr
):  # a caller who waits 1 s finds the key free again within about that second
    server = grpc.aio.server()
    binding_pb2_grpc.add_BindingServiceServicer_to_server(_Silent(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        app = await build_settlement(settings(redis_url, "settlement", account_addr=account_addr,
                                              binding_addr=f"127.0.0.1:{port}"))  # fmt: skip
        async with serving(app) as (channel, _):
            stub = settlement_pb2_grpc.SettlementServiceStub(channel)
            child, _, _ = await family(account, binding)
            request = bill(child, 100)
            started = time.monotonic()
            assert (await refused(stub.Settle(request, timeout=1)))[0] in (
                grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNAVAILABLE,
            )  # fmt: skip
            key = spb.GetSettlementRequest(institution_id=HOSPITAL,
                                           medins_setl_id=request.medins_setl_id)  # fmt: skip
            while time.monotonic() - started < 1.5:
                with contextlib.suppress(grpc.aio.AioRpcError):
                    await stub.GetSettlement(key, timeout=1)
                    await asyncio.sleep(0.05)
                    continue
                break
            assert time.monotonic() - started < 1.5, "the key stayed taken past the deadline"
    finally:
        await server.stop(0)
