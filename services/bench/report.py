"""The figures of a bench run: a table for people, a JSON document for machines."""

from __future__ import annotations

import platform
from typing import Any

import psutil
from rich.console import Console
from rich.table import Table

from services.bench.load import Run
from services.bench.measure import Cost


def figures(run: Run, cost: Cost, echo: Cost | None, echo_rps: float | None) -> dict[str, Any]:
    echo_ms = echo.cpu_total_ms if echo else 0.0
    return {
        "operations": run.count,
        "seconds": round(run.seconds, 2),
        "rps": round(run.rps, 1),
        "rps_vs_echo": round(run.rps / echo_rps, 4) if echo_rps else None,
        "latency_ms": {f"p{p}": round(run.percentile(p), 2) for p in (50, 90, 99)}
        | {"max": round(max(run.latencies_ms, default=0.0), 2)},
        "outcomes": dict(run.outcomes),
        "cpu_ms_per_op": {k: round(v, 3) for k, v in cost.cpu_ms.items()}
        | {"total": round(cost.cpu_total_ms, 3)},
        "echo_equivalents": round(cost.cpu_total_ms / echo_ms, 2) if echo_ms else None,
        "redis_commands_per_op": round(cost.commands_total, 2),
        "redis_commands": {k: round(v, 2) for k, v in sorted(cost.commands.items())},
        "redis_new_connections_per_op": round(cost.new_connections, 4),
    }


def machine() -> dict[str, Any]:
    return {
        "cpus": psutil.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def print_table(results: dict[str, dict[str, Any]], console: Console) -> None:
    speed = Table(title="gongji bench: throughput and latency")
    for column in ("scenario", "ops", "rps", "vs echo", "p50 ms", "p90 ms", "p99 ms", "max ms"):
        speed.add_column(column, justify="left" if column == "scenario" else "right")
    cost = Table(title="per operation, all server processes on this machine")
    for column in ("scenario", "CPU ms", "echo eq", "by process (ms)", "Redis cmds"):
        cost.add_column(column, justify="right" if column in ("CPU ms", "echo eq") else "left")
    for name, f in results.items():
        latency, cpu = f["latency_ms"], f["cpu_ms_per_op"]
        vs_echo = f"{f['rps_vs_echo']:.1%}" if f["rps_vs_echo"] else ""
        speed.add_row(name, str(f["operations"]), f"{f['rps']:.0f}", vs_echo,
                      *(f"{latency[k]:.1f}" for k in ("p50", "p90", "p99", "max")))  # fmt: skip
        split = " ".join(f"{k} {v:.2f}" for k, v in cpu.items() if k != "total")
        equivalents = f"{f['echo_equivalents']:.1f}" if f["echo_equivalents"] else ""
        cost.add_row(name, f"{cpu['total']:.2f}", equivalents, split,
                     f"{f['redis_commands_per_op']:.1f}")  # fmt: skip
    console.print(speed)
    console.print(cost)
    for name, f in results.items():
        outcomes = ", ".join(f"{k} {v}" for k, v in f["outcomes"].items())
        console.print(f"{name} outcomes: {outcomes}")
