"""`gongji simulate`: runs of the deterministic simulator (services.sim), each over an embedded
Redis of its own (or an embedded Redis Cluster), replayed exactly from its seed."""

from __future__ import annotations

import hashlib
import sys
import time
from typing import Annotated

import typer


def simulate(
    seed: Annotated[int, typer.Option(help="the run's seed: the same seed, the same run")],
    steps: Annotated[int, typer.Option(help="operations to run")] = 3000,
    cluster: Annotated[
        bool, typer.Option(help="over an embedded Redis Cluster of three masters")
    ] = False,
    seeds: Annotated[
        int, typer.Option(help="runs of consecutive seeds from --seed, shared by two processes")
    ] = 1,
) -> None:
    """Replay a run of the simulator: the services' real handlers and scripts under a seeded
    schedule of crashes, cancels and pauses, simulated time and a seeded workload, checked
    against the invariants and a model of the rules. Exits 0 when nothing broke, 1 when
    something did (printing the seed, the operation, the last operations and what broke).
    The last line: operations run, faults injected, violations, and the digest of the trace."""
    from services.sim.replay import report
    from services.sim.replay import simulate as run_seed

    if steps < 1 or seeds < 1:
        raise typer.BadParameter("--steps and --seeds are 1 or more")
    if seeds == 1:
        result = run_seed(seed, steps, cluster)
        for line in report(result):
            print(line)
        print(result.summary())
        sys.exit(0 if result.ok else 1)
    sys.exit(_many(seed, seeds, steps, cluster))


def _many(first: int, seeds: int, steps: int, cluster: bool) -> int:
    """Many runs over one Redis (two processes, each with its own): the report of each run
    that broke something, and the totals."""
    from services.sim.replay import in_parallel, report

    started = time.monotonic()
    results = in_parallel(range(first, first + seeds), steps, cluster)
    for result in results:
        for line in report(result):
            print(line)
    traces = hashlib.sha256("".join(r.digest for r in results).encode()).hexdigest()[:16]
    broken = sum(not r.ok for r in results)
    ops = sum(r.ops for r in results)
    print(f"{seeds} seeds ({broken} broke something) in {time.monotonic() - started:.0f} s")
    print(
        f"{ops} operations, {sum(r.faults for r in results)} faults injected, "
        f"{sum(len(r.violations) for r in results)} violations, trace {traces}"
    )
    return 1 if broken else 0
