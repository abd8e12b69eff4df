"""The rules again, over the three-master Redis Cluster and two replicas of each service
(fixtures in this folder's conftest): every test of the account, binding and settlement rules
that talks to the services through their stubs alone is collected here as well (the watch's
among them, rule A10: the shares of a payment in steps reach it too; the aid quotas', N1-N7),
and the bank run (thousands of settlements and cancels at once over overlapping families)."""

from __future__ import annotations

import inspect
from types import ModuleType

from tests.chaos import test_bank
from tests.cluster.conftest import REPLICAS, SERVICES
from tests.integration import (
    test_accounts,
    test_binding_rules,
    test_closures,
    test_contributions,
    test_quotas,
    test_settlement,
    test_special,
    test_watch,
)

STUBS = {"account", "binding", "settlement"}


def _through_stubs(module: ModuleType) -> dict[str, object]:
    return {
        name: test
        for name, test in vars(module).items()
        if name.startswith("test_") and set(inspect.signature(test).parameters) <= STUBS
    }


for _module in (test_accounts, test_binding_rules, test_closures, test_contributions,
                test_quotas, test_settlement, test_special, test_watch, test_bank):  # fmt: skip
    globals().update(_through_stubs(_module))


async def test_every_replica_answers_its_share_of_the_calls(
    account, binding, settlement, replica_logs
):
    """Callers reach a service's replicas through one address list, in turn: eight calls to
    each service reach both of its replicas (each logs one line per call)."""
    import contextlib

    import grpc

    from gongji.account.v1 import account_pb2 as apb
    from gongji.binding.v1 import binding_pb2 as bpb
    from gongji.settlement.v1 import settlement_pb2 as spb
    from tests.support import new_pid

    for _ in range(8):
        nobody = new_pid()
        for call in (
            account.GetAccount(apb.GetAccountRequest(person_id=nobody)),
            binding.ListBindings(bpb.ListBindingsRequest(binder_id=nobody)),
            settlement.ListSettlements(spb.ListSettlementsRequest(patient_id=nobody)),
        ):
            with contextlib.suppress(grpc.aio.AioRpcError):  # a refusal is an answer too
                await call
    answered = {log.name: sum('"method"' in line for line in log.read_text().splitlines())
                for log in sorted(replica_logs.glob("*.log"))}  # fmt: skip
    assert len(answered) == len(SERVICES) * REPLICAS
    assert all(n > 0 for n in answered.values()), answered
