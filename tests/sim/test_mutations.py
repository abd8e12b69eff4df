"""The simulator finds the money core's defects, put back one at a time (tests/sim/mutations.py),
within the seeds `make test` runs (test_simulator.py): the seeds of one Redis for the defects of
both modes, those of the Redis Cluster for the defects of the steps. Which of the five it finds
there (FOUND below; each test prints the seed that found it and after how many operations):

| defect                                        | mode    | found within make test's seeds |
|-----------------------------------------------|---------|--------------------------------|
| `month-end`: a month-end premium run conflict | one     | yes                            |
| `second-refund`: a second refund path         | one     | yes                            |
| `give-up`: a runner giving up a premium       | cluster | not yet                        |
| `unfinished`: a paused caller's payment       | cluster | yes                            |
| `fences`: fences past 2^53                    | cluster | not yet                        |
"""

from __future__ import annotations

import functools

import pytest

from services.sim.replay import many, report
from tests.sim.mutations import MUTATIONS, mutated
from tests.sim.test_simulator import CLUSTER, CLUSTER_STEPS, ONE_REDIS, ONE_REDIS_STEPS

# The defects found within the seeds `make test` runs; `fences` and `give-up` are not (yet).
FOUND = ("month-end", "second-refund", "unfinished")


@pytest.mark.timeout(900)  # seed by seed until the defect is found: minutes, not two
@pytest.mark.parametrize("defect", FOUND)
def test_the_simulator_finds_the_defect_put_back(defect):
    cluster = MUTATIONS[defect][1]
    seeds, steps = (CLUSTER, CLUSTER_STEPS) if cluster else (ONE_REDIS, ONE_REDIS_STEPS)
    results = many(seeds, steps, cluster, stop=True, within=functools.partial(mutated, defect))
    found = results[-1]
    assert not found.ok, f"{defect}: not found in {len(results)} seeds of {steps} operations"
    print(f"{defect}: found by seed {found.seed} after {found.step} operations:")
    print("\n".join(report(found)[-3:]))
