"""What one operation costs the servers: CPU seconds from /proc/<pid>/stat (user + system) of
each server process, and Redis commands from INFO commandstats (the commands scripts run inside
count too). Both are read before and after a run and divided by the operations it made."""

from __future__ import annotations

import dataclasses
import os
import pathlib

import redis

_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float:
    """CPU seconds a process has used so far (utime + stime)."""
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def redis_commands(nodes: list[redis.Redis]) -> dict[str, int]:
    """Calls per command since the servers started (every node of a cluster), the INFO that
    reads them excluded."""
    calls: dict[str, int] = {}
    for node in nodes:
        for name, v in node.info("commandstats").items():
            command = name.removeprefix("cmdstat_")
            calls[command] = calls.get(command, 0) + int(v["calls"])
    calls["info"] = 0
    return calls


@dataclasses.dataclass
class Snapshot:
    cpu: dict[str, float]
    commands: dict[str, int]
    connections: int


def snapshot(pids: dict[str, int], nodes: list[redis.Redis]) -> Snapshot:
    cpu = {name: cpu_s(pid) for name, pid in pids.items()}
    connections = sum(int(n.info("stats")["total_connections_received"]) for n in nodes)
    return Snapshot(cpu, redis_commands(nodes), connections)


@dataclasses.dataclass(frozen=True)
class Cost:
    """Per operation: CPU ms by process, Redis commands by name, new Redis connections."""

    cpu_ms: dict[str, float]
    commands: dict[str, float]
    new_connections: float

    @property
    def cpu_total_ms(self) -> float:
        return sum(self.cpu_ms.values())

    @property
    def commands_total(self) -> float:
        return sum(self.commands.values())


def cost(before: Snapshot, after: Snapshot, operations: int) -> Cost:
    n = max(1, operations)
    cpu = {name: (after.cpu[name] - before.cpu[name]) * 1000 / n for name in after.cpu}
    commands = {
        name: (calls - before.commands.get(name, 0)) / n
        for name, calls in after.commands.items()
        if calls != before.commands.get(name, 0)
    }
    return Cost(cpu, commands, (after.connections - before.connections) / n)
