"""What a process needs to be a trusted part of the stack, from its Settings: the guard that
names each caller, its own token for calls to its peers, and the TLS credentials of both ends.

Read once at start; a missing or unreadable file stops the process with a clear message.
"""

from __future__ import annotations

import dataclasses
import logging
import pathlib

import grpc

from services.common.auth import MAX_TTL_S, Guard, ServiceToken, Tokens, read_secret
from services.common.config import ConfigError, Settings, Tls

log = logging.getLogger("gongji.security")


@dataclasses.dataclass(frozen=True)
class Security:
    guard: Guard
    token: ServiceToken | None  # None when authentication is off
    server_credentials: grpc.ServerCredentials | None  # None: plaintext
    channel_credentials: grpc.ChannelCredentials | None

    @classmethod
    def of(cls, settings: Settings) -> Security:
        tokens = (
            load_tokens(settings.auth_secret_file, settings.token_max_ttl_s)
            if settings.auth
            else None
        )
        if tokens is None:
            log.warning(
                "authentication is OFF (GONGJI_AUTH=off): any caller may call anything; "
                "for experiments only"
            )
        return cls(
            guard=Guard(tokens),
            token=ServiceToken(tokens, settings.service) if tokens else None,
            server_credentials=server_credentials(settings.tls),
            channel_credentials=channel_credentials(settings.tls),
        )


def load_tokens(secret_file: str, max_ttl_s: int = MAX_TTL_S) -> Tokens:
    try:
        return Tokens(read_secret(secret_file), max_ttl_s)
    except FileNotFoundError:
        raise ConfigError(
            f"no auth secret at {secret_file}: `make run` makes one on first start; "
            "or point GONGJI_AUTH_SECRET_FILE at the stack's secret"
        ) from None
    except (OSError, ValueError) as e:
        raise ConfigError(f"auth secret {secret_file}: {e}") from None


def _read(path: str, what: str) -> bytes:
    try:
        return pathlib.Path(path).read_bytes()
    except OSError as e:
        raise ConfigError(f"{what} {path}: {e.strerror}") from None


def server_credentials(tls: Tls) -> grpc.ServerCredentials | None:
    """TLS with this process's certificate; with a CA, every caller must present a
    certificate it signed (mutual TLS)."""
    if not tls.on:
        return None
    pair = (_read(tls.key_file, "TLS key"), _read(tls.cert_file, "TLS certificate"))
    ca = _read(tls.ca_file, "TLS CA") if tls.ca_file else None
    return grpc.ssl_server_credentials([pair], root_certificates=ca, require_client_auth=bool(ca))


def channel_credentials(tls: Tls) -> grpc.ChannelCredentials | None:
    """How this process reaches a TLS peer: it checks the peer against the CA and presents its
    own certificate."""
    if not tls.on:
        return None
    return grpc.ssl_channel_credentials(
        root_certificates=_read(tls.ca_file, "TLS CA") if tls.ca_file else None,
        private_key=_read(tls.key_file, "TLS key"),
        certificate_chain=_read(tls.cert_file, "TLS certificate"),
    )
