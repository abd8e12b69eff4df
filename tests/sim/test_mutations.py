"""The simulator finds the money core's defects, put back one at a time (tests/sim/mutations.py),
within the seeds `make test` runs (test_simulator.py): the seeds of one Redis for the defects of
both modes, those of the Redis Cluster for the defects of the steps. Each test prints the seed
that found its defect and after how many operations (docs/SIMULATOR.md has the table).

Which seed finds a defect follows from the whole code: a change to the workload or the services
moves it. One that moves it past the seeds `make test` runs fails here; the answer is a sharper
check or a workload that reaches the defect sooner, not fewer defects.
"""

from __future__ import annotations

import functools

import pytest

from services.sim.replay import in_parallel, report
from tests.sim.mutations import MUTATIONS, mutated
from tests.sim.test_simulator import CLUSTER, CLUSTER_STEPS, ONE_REDIS, ONE_REDIS_STEPS


@pytest.mark.timeout(900)  # seed by seed until the defect is found: minutes, not two
@pytest.mark.parametrize("defect", list(MUTATIONS))
def test_the_simulator_finds_the_defect_put_back(defect):
    cluster = MUTATIONS[defect][1]
    seeds, steps = (CLUSTER, CLUSTER_STEPS) if cluster else (ONE_REDIS, ONE_REDIS_STEPS)
    within = functools.partial(mutated, defect)
    # two processes, each through its share of the seeds in order until one breaks: the first
    # seed that breaks is found whichever process holds it
    results = in_parallel(seeds, steps, cluster, stop=True, within=within)
    broken = [r for r in results if not r.ok]
    assert broken, f"{defect}: not found in {len(results)} seeds of {steps} operations"
    found = broken[0]
    print(f"{defect}: found by seed {found.seed} after {found.step} operations:")
    print("\n".join(report(found)[-3:]))
