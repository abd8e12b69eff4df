"""Who is calling (API.md "Authentication"): `authorization: Bearer <JWT>` on every RPC, HS256,
claims `sub`, `role` and `exp`, signed with the secret in the file GONGJI_AUTH_SECRET_FILE names.
`exp` is an integer at most GONGJI_TOKEN_MAX_TTL_S ahead of now: a token that would live for
years, or whose `exp` is a string the JWT library would read as a number, is refused, so a leaked
token is good for a day at most.

`Tokens` mints and verifies them; `ensure_secret` makes the file (32 random bytes, mode 0600) the
first time a stack starts. What each role may call is services.common.access.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import re
import secrets
import time
from collections.abc import Iterable

import jwt

from services.common.clock import Clock, SystemClock
from services.common.errors import DomainError

ROLES = ("institution", "citizen", "operator", "service")
ALGORITHM = "HS256"
_SUBJECT = re.compile(r"[\x21-\x7e]{1,64}")  # a person, institution, staff or service id
SERVICE_TTL_S = 3600  # a service's own token; renewed well before it runs out
MAX_TTL_S = 86_400  # GONGJI_TOKEN_MAX_TTL_S: how far ahead a token's `exp` may lie


@dataclasses.dataclass(frozen=True)
class Caller:
    role: str
    sub: str


def ensure_secret(path: str | os.PathLike[str]) -> pathlib.Path:
    """The secret file, made (readable by its owner only) if it is not there."""
    file = pathlib.Path(path)
    if not file.exists():
        file.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_hex(32))
    return file


def read_secret(path: str | os.PathLike[str]) -> bytes:
    secret = pathlib.Path(path).read_bytes().strip()
    if len(secret) < 32:
        raise ValueError(f"the auth secret in {path} is shorter than 32 bytes")
    return secret


class Tokens:
    def __init__(
        self, secret: bytes, max_ttl_s: int = MAX_TTL_S, clock: Clock | None = None
    ) -> None:
        self._secret, self.max_ttl_s = secret, max_ttl_s
        self._clock = clock or SystemClock()

    def _now(self) -> float:
        return self._clock.now().timestamp()

    def mint(self, role: str, sub: str, ttl_s: float) -> str:
        """A token for `role` and `sub` that runs out in `ttl_s` seconds (at most max_ttl_s)."""
        if role not in ROLES or not _SUBJECT.fullmatch(sub):
            raise ValueError(f"a token needs a role of {ROLES} and a subject")
        if ttl_s > self.max_ttl_s:
            raise ValueError(f"a token lives at most {self.max_ttl_s} s (GONGJI_TOKEN_MAX_TTL_S)")
        claims = {"sub": sub, "role": role, "exp": int(self._now() + ttl_s)}
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def verify(self, authorization: str) -> Caller:
        """The caller a `Bearer <JWT>` header names; UNAUTHENTICATED if it is missing, expired,
        forged or malformed."""
        return self.check(authorization)[0]

    def check(self, authorization: str) -> tuple[Caller, float]:
        """`verify`, and when the token runs out (epoch seconds)."""
        scheme, _, token = authorization.partition(" ")
        if scheme != "Bearer" or not token:
            raise DomainError("UNAUTHENTICATED", "an authorization: Bearer <token> is required")
        try:
            # exp is judged below by the service's clock, the one `mint` stamps it with
            claims = jwt.decode(
                token, self._secret, algorithms=[ALGORITHM],
                options={"require": ["sub", "role", "exp"], "verify_exp": False},
            )  # fmt: skip
        except jwt.InvalidTokenError:
            raise DomainError("UNAUTHENTICATED", "the token is not valid") from None
        role, sub, exp = claims["role"], claims["sub"], claims["exp"]
        if role not in ROLES or not isinstance(sub, str) or not _SUBJECT.fullmatch(sub):
            raise DomainError("UNAUTHENTICATED", "the token names no known role and subject")
        # The library reads a string or a float as a number and sets no upper bound.
        now = self._now()
        if type(exp) is not int or exp > now + self.max_ttl_s:
            raise DomainError(
                "UNAUTHENTICATED",
                f"the token's exp must be an integer at most {self.max_ttl_s} s from now",
            )
        if exp <= now:
            raise DomainError("UNAUTHENTICATED", "the token has expired")
        return Caller(role, sub), float(exp)


class ServiceToken:
    """A service's own token for its calls to the others, minted again before it runs out."""

    def __init__(self, tokens: Tokens, service: str) -> None:
        self._tokens, self._service = tokens, service
        self._token, self._until = "", 0.0

    def header(self) -> str:
        now = time.time()
        if now > self._until:
            ttl_s = min(SERVICE_TTL_S, self._tokens.max_ttl_s)
            self._token = self._tokens.mint("service", self._service, ttl_s)
            self._until = now + ttl_s / 2
        return f"Bearer {self._token}"


_CACHE_LIMIT = 10_000


class Guard:
    """The caller of each RPC, from its `authorization` metadata. A token is verified once and
    then remembered until it expires (a caller sends the same token on many calls).
    `Guard(None)` is authentication switched off (GONGJI_AUTH=off): every caller is a service."""

    def __init__(self, tokens: Tokens | None) -> None:
        self.tokens = tokens
        self._known: dict[str, tuple[Caller, float]] = {}

    def caller(self, metadata: Iterable[tuple[str, str | bytes]] | None) -> Caller:
        if self.tokens is None:
            return UNCHECKED
        header = next((v for k, v in metadata or () if k == "authorization"), "")
        if not isinstance(header, str):
            header = ""
        known = self._known.get(header)
        if known is not None and time.time() < known[1]:
            return known[0]
        caller, expires = self.tokens.check(header)
        if len(self._known) >= _CACHE_LIMIT:
            self._known.clear()
        self._known[header] = (caller, expires)
        return caller


UNCHECKED = Caller("service", "unchecked")
