"""Settings, read once from the environment (API.md "Configuration")."""

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
DEFAULT_METRICS_ADDRS = {
    "account": "127.0.0.1:9151",
    "binding": "127.0.0.1:9152",
    "settlement": "127.0.0.1:9153",
}


class ConfigError(Exception):
    """A setting is missing or malformed: the process stops at start with this message."""


class PortTaken(OSError):
    """An address to listen on is in use or cannot be bound: the process stops with this line."""


@dataclasses.dataclass(frozen=True)
class Tls:
    """GONGJI_TLS_CERT_FILE and GONGJI_TLS_KEY_FILE: this process's certificate and key (it
    serves TLS and presents them to its peers); GONGJI_TLS_CA_FILE: the CA that signs every
    caller's and peer's certificate (then callers must present one: mutual TLS)."""

    cert_file: str = ""
    key_file: str = ""
    ca_file: str = ""

    @property
    def on(self) -> bool:
        return bool(self.cert_file)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Tls:
        tls = cls(*(env.get(f"GONGJI_TLS_{part}_FILE", "") for part in ("CERT", "KEY", "CA")))
        if bool(tls.cert_file) != bool(tls.key_file):
            raise ConfigError("GONGJI_TLS_CERT_FILE and GONGJI_TLS_KEY_FILE go together")
        if tls.ca_file and not tls.on:
            raise ConfigError("GONGJI_TLS_CA_FILE needs GONGJI_TLS_CERT_FILE and _KEY_FILE")
        return tls


_LOOPBACK_HOSTS = ("127.", "localhost:", "[::1]:")


def loopback(address: str) -> bool:
    return address.startswith(_LOOPBACK_HOSTS)


@dataclasses.dataclass(frozen=True)
class Settings:
    service: str
    listen_addr: str
    account_addr: str
    binding_addr: str
    settlement_addr: str
    redis_url: str
    redis_mode: str = "single"  # or "cluster": GONGJI_REDIS_URL names any node of a cluster
    recovery_after_ms: int = 30_000  # in-flight work older than this is finished by recovery
    lock_lease_ms: int = 5000
    policy_file: str = ""
    env: str = "prod"
    fault: str = ""
    log_level: str = "INFO"
    drain_grace_s: float = 5.0
    auth_secret_file: str = "var/auth-secret"
    auth: bool = True  # GONGJI_AUTH=off: for experiments only, warned about at every start
    tls: Tls = dataclasses.field(default_factory=lambda: Tls())
    registry_file: str = ""
    metrics_addr: str = ""  # "" (GONGJI_METRICS_ADDR=off): no /metrics endpoint
    traces_exporter: str = ""  # OTEL_TRACES_EXPORTER: otlp or console; "" or none: no tracing
    token_max_ttl_s: int = 86_400  # GONGJI_TOKEN_MAX_TTL_S: the furthest a token's exp may lie

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
        listen_addr = env.get("GONGJI_LISTEN_ADDR", addr[service])
        tls = Tls.from_env(env)
        plaintext = env.get("GONGJI_PLAINTEXT", "")
        if plaintext not in ("", "allow"):
            raise ConfigError(f"GONGJI_PLAINTEXT must be 'allow' or unset, got {plaintext!r}")
        if not tls.on and not loopback(listen_addr) and plaintext != "allow":
            raise ConfigError(
                f"{listen_addr} is not a loopback address: configure GONGJI_TLS_CERT_FILE and "
                "GONGJI_TLS_KEY_FILE (`gongji certs` makes them), or set GONGJI_PLAINTEXT=allow "
                "on a network nobody else reaches"
            )
        auth = env.get("GONGJI_AUTH", "on")
        if auth not in ("on", "off"):
            raise ConfigError(f"GONGJI_AUTH must be 'on' or 'off', got {auth!r}")
        return cls(
            service=service,
            listen_addr=listen_addr,
            account_addr=addr["account"],
            binding_addr=addr["binding"],
            settlement_addr=addr["settlement"],
            redis_url=redis_url,
            redis_mode=_redis_mode(env.get("GONGJI_REDIS_MODE", "")),
            recovery_after_ms=_positive_int(env, "GONGJI_RECOVERY_AFTER_MS", 30_000),
            lock_lease_ms=_positive_int(env, "GONGJI_LOCK_LEASE_MS", 5000),
            policy_file=env.get("GONGJI_POLICY_FILE", ""),
            env=env.get("GONGJI_ENV", "prod"),
            fault=_fault(env.get("GONGJI_FAULT", "")),
            log_level=env.get("GONGJI_LOG_LEVEL", "INFO").upper(),
            drain_grace_s=float(_positive_int(env, "GONGJI_DRAIN_GRACE_MS", 5000)) / 1000,
            auth_secret_file=env.get("GONGJI_AUTH_SECRET_FILE", "") or "var/auth-secret",
            auth=auth == "on",
            tls=tls,
            registry_file=env.get("GONGJI_REGISTRY_FILE", ""),
            traces_exporter=_traces_exporter(env.get("OTEL_TRACES_EXPORTER", "")),
            metrics_addr=_metrics_addr(
                env.get("GONGJI_METRICS_ADDR", DEFAULT_METRICS_ADDRS[service])
            ),
            token_max_ttl_s=token_max_ttl_s(env),
        )


def token_max_ttl_s(env: Mapping[str, str]) -> int:
    """GONGJI_TOKEN_MAX_TTL_S: how far ahead of now a token's `exp` may lie (services and CLI)."""
    return _positive_int(env, "GONGJI_TOKEN_MAX_TTL_S", 86_400)


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


def _redis_mode(raw: str) -> str:
    if raw not in ("", "single", "cluster"):
        raise ConfigError(f"GONGJI_REDIS_MODE must be single or cluster, got {raw!r}")
    return raw or "single"


def _traces_exporter(raw: str) -> str:
    if raw in ("", "none"):
        return ""
    if raw not in ("otlp", "console"):
        raise ConfigError(f"OTEL_TRACES_EXPORTER must be otlp, console or none, got {raw!r}")
    return raw


def _metrics_addr(raw: str) -> str:
    if raw == "off":
        return ""
    host, _, port = raw.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"GONGJI_METRICS_ADDR must be host:port or 'off', got {raw!r}")
    return raw


def _fault(raw: str) -> str:
    if raw:
        try:
            Fault.parse(raw)
        except ValueError:
            raise ConfigError(
                f"GONGJI_FAULT must be <kill|pause|cancel>:<Method>:<n>, got {raw!r}"
            ) from None
    return raw
