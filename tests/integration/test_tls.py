"""Mutual TLS (API.md "Authentication"; README "TLS"): with certificates configured, a service
serves only TLS, admits only callers whose certificate its CA signed, and reaches its peers the
same way. The certificates come from `gongji certs` (services.cli.certs)."""

from __future__ import annotations

import pathlib
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from gongji.account.v1 import account_pb2 as pb
from gongji.account.v1 import account_pb2_grpc
from gongji.settlement.v1 import settlement_pb2_grpc
from services.account.server import build
from services.cli import certs
from services.common.config import Tls
from services.common.security import channel_credentials
from services.settlement.server import build as build_settlement
from tests.integration.accounts import open_account
from tests.integration.test_settlement import bill
from tests.support import channel, new_pid, serving, settings


def tls_of(folder: pathlib.Path, name: str) -> Tls:
    return Tls(str(folder / f"{name}.pem"), str(folder / f"{name}.key"), str(folder / "ca.pem"))


@pytest.fixture(scope="module")
def ours(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    folder = tmp_path_factory.mktemp("certs")
    certs.make(folder)
    return folder


@pytest.fixture(scope="module")
def theirs(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """Certificates with the same names from another CA."""
    folder = tmp_path_factory.mktemp("other-certs")
    certs.make(folder)
    return folder


@pytest.fixture(scope="module")
async def tls_account(redis_url: str, ours: pathlib.Path, redis: Any) -> AsyncIterator[str]:
    app = await build(settings(redis_url, tls=tls_of(ours, "account")))
    async with serving(app) as (_, port):
        yield f"127.0.0.1:{port}"


async def get_account(
    address: str, credentials: grpc.ChannelCredentials | None, pid: str = ""
) -> pb.Account:
    async with channel(address, credentials=credentials) as ch:
        stub = account_pb2_grpc.AccountServiceStub(ch)
        return await stub.GetAccount(pb.GetAccountRequest(person_id=pid or new_pid()), timeout=5)


async def test_a_caller_with_a_certificate_of_the_ca_gets_in(tls_account, ours):
    client = channel_credentials(tls_of(ours, "client"))
    async with channel(tls_account, credentials=client) as ch:
        pid = await open_account(account_pb2_grpc.AccountServiceStub(ch), 1_000)
    assert (await get_account(tls_account, client, pid)).balance_fen == 1_000


@pytest.mark.parametrize("who", ["another CA's certificate", "no certificate", "plaintext"])
async def test_any_other_caller_is_turned_away(tls_account, ours, theirs, who):
    credentials = {
        "another CA's certificate": grpc.ssl_channel_credentials(
            (ours / "ca.pem").read_bytes(),  # he trusts our server ...
            (theirs / "client.key").read_bytes(),  # ... but his certificate is not ours
            (theirs / "client.pem").read_bytes(),
        ),
        "no certificate": grpc.ssl_channel_credentials((ours / "ca.pem").read_bytes()),
        "plaintext": None,
    }[who]
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await get_account(tls_account, credentials)
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_a_caller_checks_the_server_against_the_ca(tls_account, theirs):
    """A server whose certificate another CA signed is not ours: the caller hangs up."""
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await get_account(tls_account, channel_credentials(tls_of(theirs, "client")))
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_the_services_reach_each_other_over_mutual_tls(
    redis_url, tls_account, ours, account, binding
):
    """The settlement service calls the TLS account service with its own certificate."""
    app = await build_settlement(settings(redis_url, "settlement", account_addr=tls_account,
                                          tls=tls_of(ours, "settlement")))  # fmt: skip
    async with serving(app) as (_, port):
        client = channel_credentials(tls_of(ours, "client"))
        async with channel(f"127.0.0.1:{port}", credentials=client) as ch:
            patient = await open_account(account, 5_000)
            settled = await settlement_pb2_grpc.SettlementServiceStub(ch).Settle(
                bill(patient, 1_200), timeout=10
            )
    assert [(leg.payer_id, leg.amount_fen) for leg in settled.legs] == [(patient, 1_200)]
