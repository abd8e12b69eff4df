"""Idempotency on (method, request_id), the same for every service (API.md "Conventions").

A successful response is kept for 7 days under `<prefix>:req:<method>:<request_id>` with the
fingerprint of its request. A retry with the same content gets the kept response; other content
is IDEMPOTENCY_CONFLICT; a refused request keeps nothing and may be retried. Work that must be
applied exactly once even under concurrent duplicates also records the fingerprint atomically
with its change (the `idem` key handed to `run`).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import TypeVar

import redis.asyncio as aioredis
from google.protobuf.message import Message

from services.common import ids
from services.common.errors import DomainError
from services.common.rpc import fingerprint

M = TypeVar("M", bound=Message)
RECORD_TTL_S = 7 * 24 * 3600


class Requests:
    def __init__(self, redis: aioredis.Redis, prefix: str) -> None:
        self.redis = redis
        self.prefix = prefix

    async def once(
        self,
        method: str,
        request: Message,
        response_type: type[M],
        run: Callable[[str, str], Awaitable[M]],
    ) -> M:
        """`run(fp, idem)` does the work unless this request was answered before."""
        rid = ids.request_id(getattr(request, "request_id", ""))
        fp = fingerprint(request)
        key = f"{self.prefix}:req:{method}:{rid}"
        raw = await self.redis.get(key)
        if raw is not None:
            kept = json.loads(raw)
            if kept["fp"] != fp:
                raise DomainError(
                    "IDEMPOTENCY_CONFLICT", "request_id was used before with other content"
                )
            return response_type.FromString(bytes.fromhex(kept["response"]))
        response = await run(fp, f"{method}:{rid}")
        value = json.dumps({"fp": fp, "response": response.SerializeToString().hex()})
        await self.redis.set(key, value, ex=RECORD_TTL_S, nx=True)
        return response
