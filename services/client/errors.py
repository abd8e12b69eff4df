"""A refusal as a Python exception: its status code, its reason (google.rpc.ErrorInfo, domain
"gongji") and whether the same call may simply be made again."""

from __future__ import annotations

import grpc

from services.common.rpc import reason_of

# Refused before anything changed, or still running under the same key: the same call again is
# safe and may get through (API "Error reasons and codes": ABORTED and UNAVAILABLE).
RETRYABLE_REASONS = frozenset(
    {"LOCK_TIMEOUT", "SETTLEMENT_IN_PROGRESS", "REQUEST_IN_PROGRESS", "DEPENDENCY_UNAVAILABLE",
     "SERVER_DRAINING"}
)  # fmt: skip

# What a person at a terminal should do about the reasons they are likely to meet.
ADVICE = {
    "UNAUTHENTICATED": "the token is missing, expired or signed with another secret: mint a new "
    "one (gongji token) from the stack's GONGJI_AUTH_SECRET_FILE",
    "PERMISSION_DENIED": "this role or subject may not make this call (see the role table)",
    "ACCOUNT_NOT_FOUND": "open the account first (gongji account open)",
    "ACCOUNT_EXISTS": "the account is already open; read it with gongji account get",
    "INSUFFICIENT_FUNDS": "the accounts cannot pay this much; the rest is paid in cash",
    "INSURANCE_NOT_STOPPED": "stop the insurance first with the same reason "
    "(gongji account stop --reason ...)",
    "INSURANCE_STOPPED": "the insurance is stopped: the account pays nothing more; its balance "
    "can only be withdrawn or moved",
    "INSTITUTION_NOT_DESIGNATED": "the institution is not in the partners registry "
    "(GONGJI_REGISTRY_FILE)",
    "IDEMPOTENCY_CONFLICT": "this request id was used for a different request: use a new one",
    "LOCK_TIMEOUT": "the account is busy: try again",
    "SETTLEMENT_IN_PROGRESS": "the same settlement is still running: try again in a moment",
    "REQUEST_IN_PROGRESS": "the same request is still running: try again in a moment",
    "DEPENDENCY_UNAVAILABLE": "a part of the stack is down: is it running (make run)?",
    "SERVER_DRAINING": "the service is stopping: call again (a watch: with its last cursor)",
    "QUOTA_NOT_FOUND": "check the quota id (gongji quota list --funder ID or --relative ID)",
    "QUOTA_EXISTS": "this relative already has a quota from this funder: change that one "
    "(gongji quota change)",
    "QUOTA_LIMIT_REACHED": "the funder holds the most quotas his province allows (max_quotas): "
    "end one first",
    "QUOTA_BELOW_USED": "a quota cannot be cut below what its relative has used",
    "QUOTA_ENDED": "the quota has ended: grant a new one (gongji quota grant)",
}

_CODE_ADVICE = {
    "UNAVAILABLE": "the service does not answer at its address: is the stack running (make "
    "run), and do GONGJI_ACCOUNT_ADDR, _BINDING_ADDR, _SETTLEMENT_ADDR point at it?",
    "DEADLINE_EXCEEDED": "no answer in time: is the stack running and reachable (make run)?",
}


class GongjiError(Exception):
    def __init__(self, code: grpc.StatusCode, reason: str, message: str) -> None:
        said = f"{code.name} {reason}" if reason else code.name
        super().__init__(f"{said}: {message}")
        self.code, self.reason, self.message = code, reason, message

    @classmethod
    def of(cls, e: grpc.aio.AioRpcError) -> GongjiError:
        """A refusal by a service carries its reason; a failure of the call itself (no server
        at the address, a deadline that passed) has none, only its status code. The channel
        has already retried an unreachable server (its service config), so that is final."""
        reason = reason_of(e)
        message = (e.details() or "").split(": ", 1)[-1] if reason else (e.details() or "")
        return cls(e.code(), reason, message)

    @property
    def retryable(self) -> bool:
        return self.reason in RETRYABLE_REASONS

    @property
    def advice(self) -> str:
        return ADVICE.get(self.reason) or _CODE_ADVICE.get(self.code.name, "")
