"""Rule B12 across a restart: events that happen while the binding service is down are applied
when it comes back (consumer group), none lost."""

from __future__ import annotations

import asyncio

from gongji.account.v1 import account_pb2_grpc
from gongji.binding.v1 import binding_pb2 as bpb
from gongji.binding.v1 import binding_pb2_grpc
from services.common.redisdb import EmbeddedRedis, free_port
from tests import support
from tests.e2e.stack import Process, addresses, env_for, wait_serving
from tests.integration.accounts import withdraw
from tests.integration.bindings import CHILD, create, payers, person

BINDING = "gongji.binding.v1.BindingService"


async def test_bindings_lapse_for_events_that_happened_while_the_service_was_down(tmp_path):
    redis = EmbeddedRedis(tmp_path / "redis", free_port()).start()
    addrs = addresses()
    account = Process("account", env_for("account", redis.url, addrs)).start()
    binding = Process("binding", env_for("binding", redis.url, addrs)).start()
    try:
        await wait_serving(addrs["account"], "gongji.account.v1.AccountService")
        await wait_serving(addrs["binding"], BINDING)
        async with (
            support.channel(addrs["account"]) as a_ch,
            support.channel(addrs["binding"]) as b_ch,
        ):
            accounts = account_pb2_grpc.AccountServiceStub(a_ch)
            bindings = binding_pb2_grpc.BindingServiceStub(b_ch)
            father, son = await person(accounts, 1960), await person(accounts, 1990)
            made = await bindings.CreateBinding(create(father, son, CHILD), timeout=5)
            assert await payers(bindings, son) == [(father, 1)]

            binding.stop()
            await withdraw(accounts, father)
            binding.start()
            await wait_serving(addrs["binding"], BINDING)
            for _ in range(200):
                got = await bindings.GetBinding(
                    bpb.GetBindingRequest(binding_id=made.binding_id), timeout=5
                )
                if got.status == bpb.BINDING_STATUS_LAPSED:
                    break
                await asyncio.sleep(0.05)
            assert got.status == bpb.BINDING_STATUS_LAPSED
            assert await payers(bindings, son) == []
    finally:
        binding.stop()
        account.stop()
        redis.kill()
