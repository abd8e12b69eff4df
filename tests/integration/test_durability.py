"""An acknowledged credit survives `kill -9` of Redis (AOF, appendfsync always)."""

from gongji.account.v1 import account_pb2_grpc
from services.account.server import build
from services.common.redisdb import EmbeddedRedis, free_port
from tests.integration.accounts import credit, get, open_account
from tests.support import serving, settings


async def test_a_credit_survives_kill_9_of_redis(tmp_path):
    server = EmbeddedRedis(tmp_path / "data", free_port()).start()
    try:
        async with serving(await build(settings(server.url))) as (channel, _):
            stub = account_pb2_grpc.AccountServiceStub(channel)
            pid = await open_account(stub, 4_321)
            entry = await credit(stub, pid, 1_000)
        server.kill()
        server.start()
        async with serving(await build(settings(server.url))) as (channel, _):
            stub = account_pb2_grpc.AccountServiceStub(channel)
            a = await get(stub, pid)
            assert a.balance_fen == 5_321 == entry.balance_after_fen
    finally:
        server.kill()
