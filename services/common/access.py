"""Who may call what (API.md "Authentication"): the one table every service enforces.

Each RPC has a row: for each role that may call it, the checks its subject must pass. A role
without an entry is refused (PERMISSION_DENIED), as is an RPC without a row. The checks:

- `Own(field)`: the request names the caller himself (a repeated field: only himself).
- `OneOf(fields)`: alternatives (`a | b`): one of them names the caller and none anyone else.
- `Owners()`: the record or the person the request names belongs to the caller, as the service
  that keeps it says from what it has stored (`Resolver`), before the request is validated or
  anything is changed: what the request itself lists proves nothing.
- `Answer(subjects)`: the record read belongs to the caller, checked on the answer.
- `Keep(field, subject)`: a listing keeps only the caller's own records.

`service` (the services calling each other) may call everything. `operator` (counter staff) may
call every public RPC for anyone; the account service's payment and family-aid RPCs are how the
services move money between themselves, so only services call them, and FollowEntries is the
settlement service's way into a ledger for WatchPayments; the same for the quota's money state
and the lists of a day's and a month's settlements, which only the other services read.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from google.protobuf.message import Message

from services.common.auth import Caller
from services.common.errors import DomainError

Resolver = Callable[[Any, Any], Awaitable[Iterable[str]]]  # (request, context) -> subjects


@dataclasses.dataclass(frozen=True)
class Own:
    field: str


@dataclasses.dataclass(frozen=True)
class OneOf:
    fields: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Owners:
    pass


@dataclasses.dataclass(frozen=True)
class Answer:
    subjects: Callable[[Any], Iterable[str]]


@dataclasses.dataclass(frozen=True)
class Keep:
    field: str
    subject: Callable[[Any], str]


Check = Own | OneOf | Owners | Answer | Keep
Rules = Mapping[str, tuple[Check, ...]]  # role -> checks, all of which must pass

ANYONE: tuple[Check, ...] = ()


def _binding_parties(binding: Any) -> tuple[str, str]:
    return binding.binder_id, binding.beneficiary_id


def _quota_parties(quota: Any) -> tuple[str, str]:
    return quota.funder_id, quota.relative_id


def _settlement_parties(settlement: Any) -> list[str]:
    return [settlement.patient_id, *(leg.payer_id for leg in settlement.legs)]


def _settling(institution_rules: tuple[Check, ...]) -> Rules:
    return {"institution": institution_rules, "operator": ANYONE}


_SERVICES_ONLY: Rules = {}
_OPERATOR: Rules = {"operator": ANYONE}

TABLE: dict[str, Rules] = {
    # AccountService
    "OpenAccount": _OPERATOR,
    "GetAccount": {"citizen": (Own("person_id"),), "operator": ANYONE},
    "BatchGetAccounts": {"citizen": (Own("person_ids"),), "operator": ANYONE},
    "Credit": _OPERATOR,
    "ListEntries": {"citizen": (Own("person_id"),), "operator": ANYONE},
    "SuspendAccount": _OPERATOR,
    "ResumeAccount": _OPERATOR,
    "PurchaseCommercialInsurance": _OPERATOR,
    "CancelCommercialInsurance": _OPERATOR,
    "WithdrawBalance": _OPERATOR,
    "TransferAccount": _OPERATOR,
    "RecordContribution": _OPERATOR,
    "GetContributionRecord": {"citizen": (Own("person_id"),), "operator": ANYONE},
    "StopInsurance": _OPERATOR,
    "ChangeInsuranceType": _OPERATOR,
    "PayFromAccounts": _SERVICES_ONLY,
    "GetPayment": _SERVICES_ONLY,
    "ListPayments": _SERVICES_ONLY,
    "CancelPayment": _SERVICES_ONLY,
    "ReversePayment": _SERVICES_ONLY,
    "GrantFamilyAid": _SERVICES_ONLY,
    "RevokeFamilyAid": _SERVICES_ONLY,
    "SetFamilyAidOrder": _SERVICES_ONLY,
    "FollowEntries": _SERVICES_ONLY,
    "OpenQuota": _SERVICES_ONLY,
    "ChangeQuotaAmount": _SERVICES_ONLY,
    "CloseQuota": _SERVICES_ONLY,
    "ActivateQuota": _SERVICES_ONLY,
    "GetQuotas": _SERVICES_ONLY,
    "ListDayPayments": _SERVICES_ONLY,
    "ListClearingPayments": _SERVICES_ONLY,
    # BindingService
    "CreateBinding": {"citizen": (Own("binder_id"),), "operator": ANYONE},
    "RemoveBinding": {"citizen": (Owners(),), "operator": ANYONE},
    "GetBinding": {"citizen": (Answer(_binding_parties),), "operator": ANYONE},
    "ListBindings": {"citizen": (OneOf(("binder_id", "beneficiary_id")),), "operator": ANYONE},
    "GetPayers": {"citizen": (Own("beneficiary_id"),), "operator": ANYONE},
    # the beneficiary or one of his ACTIVE binders, as stored
    "SetPayerOrder": {"citizen": (Owners(),), "operator": ANYONE},
    "ConfirmBinding": {"citizen": (Owners(),), "operator": ANYONE},  # the relative (B14)
    "GrantQuota": {"citizen": (Own("funder_id"),), "operator": ANYONE},
    "ChangeQuota": {"citizen": (Owners(),), "operator": ANYONE},  # the funder, as stored
    "EndQuota": {"citizen": (Owners(),), "operator": ANYONE},  # the funder or the relative
    "GetQuota": {"citizen": (Answer(_quota_parties),), "operator": ANYONE},
    "ListQuotas": {"citizen": (OneOf(("funder_id", "relative_id")),), "operator": ANYONE},
    "ConfirmQuota": {"citizen": (Owners(),), "operator": ANYONE},  # the relative (B14)
    # SettlementService
    "PreSettle": _settling((Own("institution_id"),)),
    "Settle": _settling((Own("institution_id"),)),
    "CancelSettlement": _settling((Owners(),)),
    "ReverseSettlement": _settling((Own("institution_id"),)),
    "GetSettlement": {
        "institution": (Answer(lambda s: [s.institution_id]),),
        "citizen": (Answer(_settlement_parties),),
        "operator": ANYONE,
    },
    "ListSettlements": {
        "institution": (Keep("settlements", lambda s: s.institution_id),),
        "citizen": (OneOf(("patient_id", "payer_id")),),
        "operator": ANYONE,
    },
    "PayResidentPremium": {"citizen": (Own("payer_id"),), "operator": ANYONE},
    # the beneficiary, or the payer: the stored auto-pay's, else the one named
    "SetPremiumAutoPay": {"citizen": (Owners(),), "operator": ANYONE},
    "GetPremiumAutoPay": _OPERATOR,
    "RunPremiumDeductions": _OPERATOR,
    "WatchPayments": {"citizen": (Own("person_id"),), "operator": ANYONE},
    "GetClearingStatement": _OPERATOR,
    "ReconcileDay": _settling((Own("institution_id"),)),
}


def rpc_name(method: str) -> str:
    """`/gongji.account.v1.AccountService/GetAccount` -> `GetAccount`."""
    return method.rsplit("/", 1)[-1]


def _names(request: Message, field: str, sub: str, every: bool) -> bool:
    value = getattr(request, field)
    if isinstance(value, str):
        return value == sub
    values = list(value)
    if every:
        return bool(values) and all(v == sub for v in values)
    return sub in values


def _one_of(request: Message, fields: tuple[str, ...], sub: str) -> bool:
    """One of the alternatives names `sub`, and every one that is set names him: a second one
    naming another person is refused here, not left to the argument check."""
    given = [f for f in fields if getattr(request, f)]
    return bool(given) and all(_names(request, f, sub, True) for f in given)


def _denied(caller: Caller, rpc: str, why: str) -> DomainError:
    return DomainError("PERMISSION_DENIED", f"a {caller.role} may not call {rpc}{why}")


class Gate:
    """Applies TABLE to one service's calls. `resolvers` say whose record a request names, for
    the RPCs whose rows hold `Owners()`."""

    def __init__(self, resolvers: Mapping[str, Resolver] | None = None) -> None:
        self.resolvers = dict(resolvers or {})

    def rules(self, rpc: str, caller: Caller) -> tuple[Check, ...]:
        if caller.role == "service":
            return ANYONE
        row = TABLE.get(rpc)
        if row is None or caller.role not in row:
            raise _denied(caller, rpc, "")
        return row[caller.role]

    async def before(self, rpc: str, caller: Caller, request: Message, context: Any) -> None:
        for check in self.rules(rpc, caller):
            if isinstance(check, Own) and not _names(request, check.field, caller.sub, True):
                raise _denied(caller, rpc, f" for anyone but himself ({check.field})")
            if isinstance(check, OneOf) and not _one_of(request, check.fields, caller.sub):
                raise _denied(caller, rpc, f" unless {' or '.join(check.fields)} names him")
            if isinstance(check, Owners):
                owners = await self.resolvers[rpc](request, context)
                if caller.sub not in set(owners):
                    raise _denied(caller, rpc, " on a record that is not his")

    def after(self, rpc: str, caller: Caller, response: Message) -> Message:
        for check in self.rules(rpc, caller):
            if isinstance(check, Answer) and caller.sub not in set(check.subjects(response)):
                raise _denied(caller, rpc, " on a record that is not his")
            if isinstance(check, Keep):
                kept = [r for r in getattr(response, check.field) if check.subject(r) == caller.sub]
                response.ClearField(check.field)
                getattr(response, check.field).extend(kept)
        return response


def needs_resolver(rpc: str) -> bool:
    return any(
        isinstance(check, Owners) for checks in TABLE.get(rpc, {}).values() for check in checks
    )
