"""What callers see when a dependency is down or an account is busy: retryable statuses."""

import grpc

from gongji.account.v1 import account_pb2 as pb
from gongji.account.v1 import account_pb2_grpc
from services.account.locks import Locks
from services.account.server import build
from services.common.redisdb import free_port
from tests.integration.accounts import get, open_account, rid
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
