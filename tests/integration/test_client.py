"""The Python client retries only what is safe to repeat: a refusal whose reason says the same
call may get through later (LOCK_TIMEOUT, SETTLEMENT_IN_PROGRESS) is repeated with back-off
within the call's deadline; a business refusal is raised at once, as a GongjiError with its
reason. A real gRPC server answers as the account service would."""

from __future__ import annotations

import grpc
import pytest

from gongji.account.v1 import account_pb2 as pb
from services.client import Client, GongjiError
from services.common.errors import DomainError
from services.common.rpc import to_status
from tests.support import new_pid


class Scripted:
    """GetAccount answers with the refusals given, in turn, then with an account."""

    def __init__(self, refusals: list[str]) -> None:
        self.refusals, self.calls = refusals, 0

    async def get_account(self, request: pb.GetAccountRequest, context) -> pb.Account:
        self.calls += 1
        if self.calls <= len(self.refusals):
            status = to_status(DomainError(self.refusals[self.calls - 1], "scripted"))
            await context.abort(status.code, status.details, status.trailing_metadata)
        return pb.Account(person_id=request.person_id, balance_fen=100)


@pytest.fixture
async def scripted():
    servers: list[grpc.aio.Server] = []
    clients: list[Client] = []

    async def start(refusals: list[str]) -> tuple[Client, Scripted]:
        script = Scripted(refusals)
        server = grpc.aio.server()
        server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(
            "gongji.account.v1.AccountService",
            {"GetAccount": grpc.unary_unary_rpc_method_handler(
                script.get_account, pb.GetAccountRequest.FromString,
                pb.Account.SerializeToString)},
        )])  # fmt: skip
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        servers.append(server)
        address = f"127.0.0.1:{port}"
        client = Client.connect(None, {n: address for n in ("account", "binding", "settlement")})
        clients.append(client)
        return client, script

    yield start
    for client in clients:
        await client.close()
    for server in servers:
        await server.stop(0)


async def test_a_busy_account_is_asked_again_until_it_answers(scripted):
    client, script = await scripted(["LOCK_TIMEOUT", "SETTLEMENT_IN_PROGRESS", "LOCK_TIMEOUT"])
    pid = new_pid()
    account = await client.account.GetAccount(pb.GetAccountRequest(person_id=pid), timeout_s=5)
    assert (account.person_id, account.balance_fen, script.calls) == (pid, 100, 4)


async def test_a_business_refusal_is_raised_at_once_with_its_reason(scripted):
    client, script = await scripted(["INSUFFICIENT_FUNDS"])
    with pytest.raises(GongjiError) as refused:
        await client.account.GetAccount(pb.GetAccountRequest(person_id=new_pid()))
    assert refused.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert (refused.value.reason, refused.value.retryable, script.calls) == (
        "INSUFFICIENT_FUNDS", False, 1)  # fmt: skip


async def test_retries_stop_at_the_deadline_and_say_why(scripted):
    client, script = await scripted(["LOCK_TIMEOUT"] * 1000)
    with pytest.raises(GongjiError) as refused:
        await client.account.GetAccount(pb.GetAccountRequest(person_id=new_pid()), timeout_s=0.5)
    assert refused.value.reason == "LOCK_TIMEOUT" and refused.value.retryable
    assert 2 <= script.calls < 20  # backed off, not hammered
