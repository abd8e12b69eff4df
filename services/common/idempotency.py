"""Idempotency on (method, request_id): the one mechanism of every mutating RPC (API.md
"Conventions").

Before any work, the request's record `<prefix>:req:<method>:<request_id>` is claimed
atomically with the request's fingerprint (every field but request_id). So the same key with
other content is IDEMPOTENCY_CONFLICT even while the first request still runs, and a concurrent
duplicate waits for the first one's answer (within its own deadline; else it is told to retry,
ABORTED/REQUEST_IN_PROGRESS).

The work's effects are idempotent on their own: the account scripts keep the answer with the
change, under the marker `<method>:<request_id>` on the account's shard, and the other effects
are keyed by ids derived from the request. So a request whose owner died after its change, or
whose caller gave up, answers the same when retried once the claim's lease has run out.

Once claimed, a request runs to its end and records its answer even if its caller gives up
(the handler's cancellation does not reach it), so a retry finds the answer instead of a claim
that nobody finishes. On success the record keeps the response for 7 days. When the work fails
(a refusal, or a peer or Redis that did not answer) the claim is released, so the request may be
retried at once: a refusal changed nothing, and whatever else was done is idempotent. A claim
whose process died stands until its lease runs out.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import redis.asyncio as aioredis
from google.protobuf.message import Message

from services.common import ids
from services.common.detached import Detached
from services.common.errors import DomainError
from services.common.rpc import fingerprint

M = TypeVar("M", bound=Message)
RECORD_TTL_S = 7 * 24 * 3600
_LEASE_MARGIN_S, _LEASE_MAX_S = 1.0, 60.0

# KEYS[1] record; ARGV[1] fingerprint, ARGV[2] claim token, ARGV[3] lease ms.
# Returns 'MINE' (claimed now), 'CONFLICT', 'BUSY' (claimed by a request still running), or the
# record of a request answered before.
_CLAIM = """
local raw = redis.call('GET', KEYS[1])
if raw then
  local r = cjson.decode(raw)
  if r.fp ~= ARGV[1] then return 'CONFLICT' end
  if r.response then return raw end
  return 'BUSY'
end
redis.call('SET', KEYS[1], cjson.encode({fp = ARGV[1], token = ARGV[2]}), 'PX', ARGV[3])
return 'MINE'
"""
# KEYS[1] record; ARGV[1] fingerprint, ARGV[2] response (hex), ARGV[3] TTL s. Keeps the first
# answer if a duplicate that outlived our lease answered already.
_COMPLETE = """
local raw = redis.call('GET', KEYS[1])
if raw then
  local r = cjson.decode(raw)
  if r.response or r.fp ~= ARGV[1] then return 0 end
end
redis.call('SET', KEYS[1], cjson.encode({fp = ARGV[1], response = ARGV[2]}), 'EX', ARGV[3])
return 1
"""
# KEYS[1] record; ARGV[1] claim token. Frees a claim that is still ours and unanswered.
_RELEASE = """
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
local r = cjson.decode(raw)
if r.token ~= ARGV[1] or r.response then return 0 end
return redis.call('DEL', KEYS[1])
"""


class Requests:
    def __init__(self, redis: aioredis.Redis, prefix: str) -> None:
        self.redis = redis
        self.prefix = prefix
        self._claim = redis.register_script(_CLAIM)
        self._complete = redis.register_script(_COMPLETE)
        self._release = redis.register_script(_RELEASE)
        self.detached = Detached()

    async def once(
        self,
        method: str,
        request: Message,
        response_type: type[M],
        run: Callable[[str, str], Awaitable[M]],
        context: Any = None,
        fp: str | None = None,
        rid: str | None = None,
    ) -> M:
        """`run(fp, marker)` does the work unless this request was answered before.
        `fp` replaces the request's own fingerprint where defaults must compare equal; `rid`
        names the request id of a request whose field has another name (a job's run_id)."""
        rid = ids.request_id(rid if rid is not None else getattr(request, "request_id", ""))
        fp = fp or fingerprint(request)
        return await self.detached.run(
            self._once(f"{method}:{rid}", fp, response_type, run, context)
        )

    async def _once(
        self,
        marker: str,
        fp: str,
        response_type: type[M],
        run: Callable[[str, str], Awaitable[M]],
        context: Any,
    ) -> M:
        key = f"{self.prefix}:req:{marker}"
        token = secrets.token_hex(8)
        lease_ms = int(_lease_s(context) * 1000)
        claimed = await self._claim_or_wait(key, fp, token, lease_ms, _wait_s(context))
        if claimed != "MINE":
            return response_type.FromString(bytes.fromhex(json.loads(claimed)["response"]))
        try:
            response = await run(fp, marker)
        except Exception:
            await self._release(keys=[key], args=[token])
            raise
        value = response.SerializeToString().hex()
        await self._complete(keys=[key], args=[fp, value, RECORD_TTL_S])
        return response

    async def _claim_or_wait(
        self, key: str, fp: str, token: str, lease_ms: int, wait_s: float
    ) -> str:
        """'MINE', or the record of the same request answered before (or meanwhile)."""
        deadline = time.monotonic() + wait_s
        delay = 0.005
        while True:
            claimed = str(await self._claim(keys=[key], args=[fp, token, lease_ms]))
            if claimed == "CONFLICT":
                raise DomainError(
                    "IDEMPOTENCY_CONFLICT", "request_id was used before with other content"
                )
            if claimed != "BUSY":
                return claimed
            if time.monotonic() + delay > deadline:
                raise DomainError(
                    "REQUEST_IN_PROGRESS", "this request is still being answered; retry"
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.1)


def _wait_s(context: Any) -> float:
    """How long a duplicate waits for the first request's answer: the caller's deadline less a
    margin for our own answer, at most a few seconds."""
    left = context.time_remaining() if context is not None else None
    return 2.0 if left is None else min(5.0, max(0.0, float(left) - 0.1))


def _lease_s(context: Any) -> float:
    """How long a claim may stand before a retry may run again: the caller's deadline and a
    margin (the work stops with the call), at most a minute."""
    left = context.time_remaining() if context is not None else None
    if left is None:
        return _LEASE_MAX_S
    return min(_LEASE_MAX_S, max(0.0, float(left)) + _LEASE_MARGIN_S)
