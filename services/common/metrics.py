"""Prometheus metrics of a service process, served on HTTP `/metrics` (GONGJI_METRICS_ADDR).

Recorded where each thing happens, once: every RPC in the one server interceptor
(services.common.rpc), lock waits, timeouts and lost leases in the lock module
(services.account.locks), pending marks and the work their sweeps finished in
services.common.intents, Redis reachability in the health probe. Labels are bounded sets (method
names, status codes, reasons, relay names): never a person, an institution or a request id.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, start_http_server

from services.common.config import PortTaken

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

RPCS = Counter(
    "gongji_rpc", "RPCs answered, by method, status code and reason", ["method", "code", "reason"]
)
RPC_SECONDS = Histogram(
    "gongji_rpc_duration_seconds", "Time to answer an RPC", ["method"], buckets=_LATENCY_BUCKETS
)
LOCK_WAIT_SECONDS = Histogram(
    "gongji_lock_wait_seconds", "Time to take the locks of an operation's accounts",
    buckets=_LATENCY_BUCKETS,
)  # fmt: skip
LOCK_TIMEOUTS = Counter("gongji_lock_timeouts", "Operations refused with LOCK_TIMEOUT")
LOCK_LEASES_LOST = Counter("gongji_lock_leases_lost", "Lock leases that ran out under a holder")
OUTBOX_PENDING = Gauge(
    "gongji_outbox_pending", "Changes whose relay has not run yet (outbox lag)", ["outbox"]
)
RELAYED_LATE = Counter(
    "gongji_recovery_actions",
    "Work finished by a background relay after the call that began it could not",
    ["action"],
)
REDIS_UP = Gauge("gongji_redis_up", "1 while this process reaches Redis, else 0")


def serve(address: str) -> None:
    """Serve `/metrics` on host:port in a daemon thread; a taken port stops the start."""
    host, _, port = address.rpartition(":")
    try:
        start_http_server(int(port), addr=host.strip("[]"))
    except OSError as e:
        raise PortTaken(f"cannot serve metrics on {address}: {e.strerror or e}") from None
