"""Settings, read once from the environment (API.md "Processes, ports, environment")."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping

from services.common.faults import Fault

DEFAULT_ADDRS = {
    "account": "127.0.0.1:50051",
    "binding": "127.0.0.1:50052",
    "settlement": "127.0.0.1:50053",
}


class ConfigError(Exception):
    """A setting is missing or malformed: the process stops at start with this message."""


@dataclasses.dataclass(frozen=True)
class Settings:
    service: str
    listen_addr: str
    account_addr: str
    binding_addr: str
    settlement_addr: str
    redis_url: str
    hold_ttl_s: int = 600
    lock_lease_ms: int = 5000
    policy_file: str = ""
    env: str = "prod"
    fault: str = ""
    log_level: str = "INFO"
    drain_grace_s: float = 5.0

    @property
    def fault_plan(self) -> Fault | None:
        """The fault to inject (services.common.faults); only when GONGJI_ENV=test."""
        if self.env != "test" or not self.fault:
            return None
        return Fault.parse(self.fault)

    @classmethod
    def from_env(cls, service: str, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        if service not in DEFAULT_ADDRS:
            raise ConfigError(f"unknown service {service!r}")
        redis_url = env.get("GONGJI_REDIS_URL", "")
        if not redis_url:
            raise ConfigError(
                "GONGJI_REDIS_URL is not set: start the stack with `make run`, "
                "or point the service at a Redis (redis://host:port/db)"
            )
        addr = {
            name: env.get(f"GONGJI_{name.upper()}_ADDR", a) for name, a in DEFAULT_ADDRS.items()
        }
        return cls(
            service=service,
            listen_addr=env.get("GONGJI_LISTEN_ADDR", addr[service]),
            account_addr=addr["account"],
            binding_addr=addr["binding"],
            settlement_addr=addr["settlement"],
            redis_url=redis_url,
            hold_ttl_s=_positive_int(env, "GONGJI_HOLD_TTL_S", 600),
            lock_lease_ms=_positive_int(env, "GONGJI_LOCK_LEASE_MS", 5000),
            policy_file=env.get("GONGJI_POLICY_FILE", ""),
            env=env.get("GONGJI_ENV", "prod"),
            fault=_fault(env.get("GONGJI_FAULT", "")),
            log_level=env.get("GONGJI_LOG_LEVEL", "INFO").upper(),
            drain_grace_s=float(_positive_int(env, "GONGJI_DRAIN_GRACE_MS", 5000)) / 1000,
        )


def _positive_int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "")
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if value <= 0:
        raise ConfigError(f"{name} must be > 0, got {value}")
    return value


def _fault(raw: str) -> str:
    if raw:
        try:
            Fault.parse(raw)
        except ValueError:
            raise ConfigError(
                f"GONGJI_FAULT must be <kill|pause|cancel>:<Method>:<n>, got {raw!r}"
            ) from None
    return raw
