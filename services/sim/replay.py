"""Running a seed: over a Redis of its own (the embedded one, or an embedded Redis Cluster of
three masters) unless given one, in an event loop of its own; and what a run tells its reader."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import gc
import logging
import multiprocessing
import pathlib
import shutil
import sys
import tempfile
import warnings
from collections.abc import Callable, Coroutine, Iterator, Sequence
from typing import Any, TypeVar

from services.common.redisdb import EmbeddedCluster, EmbeddedRedis, free_cluster_port, free_port
from services.sim.run import Result, Simulation
from services.sim.scheduler import FaultRates

T = TypeVar("T")


@contextlib.contextmanager
def embedded(cluster: bool) -> Iterator[str]:
    """A throwaway Redis (or Redis Cluster) for runs, no fsync: its data dies with it."""
    folder = pathlib.Path(tempfile.mkdtemp(prefix="gongji-sim-"))
    server: EmbeddedRedis | EmbeddedCluster
    if cluster:
        server = EmbeddedCluster(folder, free_cluster_port(), fsync="no").start()
    else:
        server = EmbeddedRedis(folder, free_port(), fsync="no").start()
    try:
        yield server.url
    finally:
        server.kill()
        shutil.rmtree(folder, ignore_errors=True)


def in_own_loop(work: Coroutine[Any, Any, T]) -> T:
    """`work` in a new plain asyncio loop (the scheduler reads its ready queue). Runners that
    died in the run are never cancelled: a crash runs no clean-up. Once the loop is closed they
    are closed too, with that closed loop as the thread's current one, so whatever clean-up
    their frames try then fails at once and reaches nothing (nor waits for the collector to
    try it later, in another run)."""
    loop = asyncio.SelectorEventLoop()
    try:
        return loop.run_until_complete(work)
    finally:
        dead = asyncio.all_tasks(loop)
        loop.close()
        local = getattr(asyncio.get_event_loop_policy(), "_local", None)
        previous = getattr(local, "_loop", None)
        asyncio.set_event_loop(loop)
        try:
            _close_quietly(dead)
        finally:
            asyncio.set_event_loop(previous)


def _close_quietly(dead: set[asyncio.Task[Any]]) -> None:
    hook = sys.unraisablehook
    sys.unraisablehook = lambda _: None
    logging.disable(logging.CRITICAL)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for task in dead:
                task._log_destroy_pending = False  # type: ignore[attr-defined]
                with contextlib.suppress(BaseException):
                    task.get_coro().close()
            dead.clear()
            gc.collect()
    finally:
        sys.unraisablehook = hook
        logging.disable(logging.NOTSET)


def simulate(
    seed: int,
    steps: int,
    cluster: bool = False,
    url: str = "",
    rates: FaultRates | None = None,
) -> Result:
    """One run; over `url` (emptied first) when given, else over a Redis of its own."""
    mode = "cluster" if cluster else "single"
    if url:
        return in_own_loop(Simulation(seed, steps, url, mode, rates).run())
    with embedded(cluster) as own:
        return in_own_loop(Simulation(seed, steps, own, mode, rates).run())


Within = Callable[[], contextlib.AbstractContextManager[Any]]


def many(
    seeds: Sequence[int], steps: int, cluster: bool = False, stop: bool = False,
    within: Within | None = None, first_broken: Any = None,
) -> list[Result]:  # fmt: skip
    """A run of each seed in turn, over one Redis of their own; `stop`: at the first that
    breaks something; `within`: the runs inside the context it makes (a defect put back);
    `first_broken`: the lowest seed that broke, shared with other processes running other
    seeds (a manager's dict): a seed above it is not run."""
    results = []
    with within() if within else contextlib.nullcontext(), embedded(cluster) as url:
        for seed in seeds:
            if stop and first_broken is not None and first_broken.get("seed", seed) < seed:
                break
            results.append(simulate(seed, steps, cluster, url))
            if stop and not results[-1].ok:
                if first_broken is not None:
                    first_broken["seed"] = min(first_broken.get("seed", seed), seed)
                break
    return results


def in_parallel(
    seeds: Sequence[int], steps: int, cluster: bool = False, workers: int = 2,
    stop: bool = False, within: Within | None = None,
) -> list[Result]:  # fmt: skip
    """The runs of `many`, the seeds shared out over `workers` processes (each with a Redis
    of its own), in the order of `seeds`. With `stop`, each process stops at its first seed
    that breaks something, or at a seed above the lowest one another process found broken:
    the first seed that breaks is found whichever process holds it. `within` is made in each
    process: it must be picklable."""
    shares = [list(seeds[i::workers]) for i in range(workers)]
    context = multiprocessing.get_context("spawn")  # a fresh interpreter: no loop, no threads
    with contextlib.ExitStack() as stack:
        first_broken = None
        if stop:
            first_broken = stack.enter_context(context.Manager()).dict()
        pool = stack.enter_context(
            concurrent.futures.ProcessPoolExecutor(workers, mp_context=context)
        )
        n = len(shares)
        done = list(pool.map(many, shares, [steps] * n, [cluster] * n, [stop] * n, [within] * n,
                             [first_broken] * n))  # fmt: skip
    by_seed = {r.seed: r for results in done for r in results}
    return [by_seed[seed] for seed in seeds if seed in by_seed]


def report(result: Result) -> list[str]:
    """What a failed run prints: its seed, where, the last operations, what broke."""
    if result.ok:
        return []
    cluster = " --cluster" if result.cluster else ""
    lines = [
        f"seed {result.seed}{cluster}: an invariant broke after operation {result.step}",
        "the last operations:",
    ]
    lines += [f"  {line}" for line in result.last]
    lines += ["broken:"] + [f"  {v}" for v in result.violations[:40]]
    if len(result.violations) > 40:
        lines.append(f"  ... and {len(result.violations) - 40} more")
    return lines
