"""The deterministic simulator (services/sim) over the real services, scripts and Redis: a
hundred thousand operations over one Redis and runs over a Redis Cluster break no invariant
(docs/ARCHITECTURE.md "Invariants"; every answer as the rules predict it, every balance as the
rules give it); a seed replays exactly; and a run that breaks something says where, and
`gongji simulate` exits 1 for it."""

from __future__ import annotations

import time

import pytest
from typer.testing import CliRunner

from services.cli.__main__ import app
from services.sim.replay import in_parallel, many, report, simulate
from tests.sim.mutations import mutated

# What `make test` runs: these seeds, these many operations each.
ONE_REDIS, ONE_REDIS_STEPS = range(1, 101), 1000
CLUSTER, CLUSTER_STEPS = range(1, 11), 1000


def _summed(results: list) -> str:
    ops, faults = sum(r.ops for r in results), sum(r.faults for r in results)
    return f"{len(results)} seeds, {ops} operations, {faults} faults"


def _broken(results: list) -> list[str]:
    return [line for r in results for line in report(r)]


# Runs of many seeds take minutes, not the suite's two: bounded here, each by its own budget.
@pytest.mark.timeout(900)
def test_a_hundred_thousand_operations_over_one_redis_break_nothing():
    started = time.monotonic()
    results = in_parallel(ONE_REDIS, ONE_REDIS_STEPS)
    assert not _broken(results), "\n".join(_broken(results))
    assert sum(r.ops for r in results) >= 100_000
    print(f"{_summed(results)} in {time.monotonic() - started:.0f} s")


@pytest.mark.timeout(600)
def test_runs_over_a_redis_cluster_break_nothing():
    started = time.monotonic()
    results = in_parallel(CLUSTER, CLUSTER_STEPS, cluster=True)
    assert not _broken(results), "\n".join(_broken(results))
    print(f"{_summed(results)} in {time.monotonic() - started:.0f} s")


def test_a_seed_replays_the_same_run():
    first, again = simulate(7, 600), simulate(7, 600)
    assert first.ok and again == first
    assert first.faults > 0 and first.ops >= 600


@pytest.mark.timeout(600)
def test_a_broken_run_says_its_seed_where_and_what_broke():
    # a defect put back (a second refund path): the first seed to meet it is reported
    with mutated("second-refund"):
        [broken] = many(ONE_REDIS, ONE_REDIS_STEPS, stop=True)[-1:]
        result = CliRunner().invoke(app, ["simulate", "--seed", str(broken.seed), "--steps",
                                          str(ONE_REDIS_STEPS)])  # fmt: skip
    lines = report(broken)
    assert lines[0].startswith(f"seed {broken.seed}: an invariant broke after operation ")
    assert lines[1] == "the last operations:" and lines[2].startswith("  #")
    assert "broken:" in lines and broken.violations
    assert result.exit_code == 1
    assert result.output.splitlines()[-1] == broken.summary()
    assert f"trace {broken.digest}" in broken.summary()


def test_a_run_that_breaks_nothing_exits_0():
    result = CliRunner().invoke(app, ["simulate", "--seed", "3", "--steps", "200"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == simulate(3, 200).summary()
