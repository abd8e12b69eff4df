"""How the CLI and the bench reach a stack: a token minted from the stack's secret
(GONGJI_AUTH_SECRET_FILE, default var/auth-secret) and, when GONGJI_TLS_CERT_FILE/_KEY_FILE/
_CA_FILE name a caller's certificate (`gongji certs` makes `client.pem`), mutual TLS."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import grpc

from services.client import Client
from services.common import channels
from services.common.config import DEFAULT_ADDRS, Tls, token_max_ttl_s
from services.common.security import channel_credentials, load_tokens

# A command's token: well inside GONGJI_TOKEN_MAX_TTL_S (a day by default), so that a host
# whose clock runs a little ahead still mints one the services accept.
TOKEN_TTL_S = 12 * 3600


@dataclasses.dataclass(frozen=True)
class Connection:
    header: str | None  # None: the stack runs with GONGJI_AUTH=off
    credentials: grpc.ChannelCredentials | None  # None: plaintext

    @classmethod
    def from_env(cls, env: Mapping[str, str], role: str, sub: str) -> Connection:
        header = None
        if env.get("GONGJI_AUTH", "on") != "off":
            secret = env.get("GONGJI_AUTH_SECRET_FILE", "") or "var/auth-secret"
            tokens = load_tokens(secret, token_max_ttl_s(env))
            ttl_s = min(TOKEN_TTL_S, max(1, tokens.max_ttl_s // 2))
            header = f"Bearer {tokens.mint(role, sub, ttl_s)}"
        return cls(header, channel_credentials(Tls.from_env(env)))

    def channel(self, address: str) -> grpc.aio.Channel:
        header = self.header
        return channels.channel(address, (lambda: header) if header else None, self.credentials)

    def client(self, env: Mapping[str, str], timeout_s: float = 10.0) -> Client:
        """A client of the stack at the addresses `env` names (GONGJI_ACCOUNT_ADDR, ...)."""
        return Client(
            {
                n: self.channel(env.get(f"GONGJI_{n.upper()}_ADDR", a))
                for n, a in DEFAULT_ADDRS.items()
            },
            timeout_s,
        )

    def health_channel(self, address: str) -> grpc.Channel:
        """A blocking channel for health checks (open to every caller); to a list of replicas,
        whichever answers in turn."""
        options = [("grpc.lb_policy_name", "round_robin")] if "," in address else []
        if self.credentials is None:
            return grpc.insecure_channel(channels.target(address), options)
        return grpc.secure_channel(channels.target(address), self.credentials, options)
