"""`gongji audit` at a terminal: a progress line per kind of record while the scan runs, then
the report; a Redis that does not answer is said in one line."""

from __future__ import annotations

import asyncio

import redis.exceptions
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from services.audit import audit, render
from services.cli.show import console


def run(redis_url: str, recovery_after_ms: int, redis_mode: str = "single") -> int:
    """0 when every invariant holds, 1 when one does not, 2 when Redis cannot be read."""
    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TextColumn("{task.completed:,}"),
        TimeElapsedColumn(), console=console, transient=True,
    ) as progress:  # fmt: skip
        tasks: dict[str, object] = {}

        def seen(kind: str, n: int) -> None:
            if kind not in tasks:
                tasks[kind] = progress.add_task(kind, total=None)
            progress.update(tasks[kind], completed=n)  # type: ignore[arg-type]

        try:
            report = asyncio.run(audit(redis_url, seen, recovery_after_ms, redis_mode=redis_mode))
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as e:
            console.print(f"[red]cannot read {redis_url}: {e}[/red]")
            console.print("  what to do: is the stack running (make run)? or set GONGJI_REDIS_URL")
            return 2
    console.print(render(report), markup=False)
    return 0 if report.ok else 1
