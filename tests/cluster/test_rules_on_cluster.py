"""The rules again, over the three-master Redis Cluster and two replicas of each service
(fixtures in this folder's conftest): every test of the account, binding and settlement rules
that talks to the services through their stubs alone is collected here as well."""

from __future__ import annotations

import inspect
from types import ModuleType

from tests.cluster.conftest import REPLICAS, SERVICES
from tests.integration import (
    test_accounts,
    test_binding_rules,
    test_contributions,
    test_settlement,
    test_special,
)

STUBS = {"account", "binding", "settlement"}


def _through_stubs(module: ModuleType) -> dict[str, object]:
    return {
        name: test
        for name, test in vars(module).items()
        if name.startswith("test_") and set(inspect.signature(test).parameters) <= STUBS
    }


for _module in (test_accounts, test_binding_rules, test_contributions, test_settlement,
                test_special):  # fmt: skip
    globals().update(_through_stubs(_module))


def test_every_replica_answered_its_share_of_the_calls(replica_logs):
    """Callers and services reach a service's replicas through one address list, in turn:
    after the rules above, every replica has answered calls (one log line per call)."""
    answered = {log.name: sum('"method"' in line for line in log.read_text().splitlines())
                for log in sorted(replica_logs.glob("*.log"))}  # fmt: skip
    assert len(answered) == len(SERVICES) * REPLICAS
    assert all(n > 0 for n in answered.values()), answered
