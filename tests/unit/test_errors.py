"""Error reasons, their gRPC codes and the rich status on the wire (API.md "Error model")."""

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from gongji.account.v1 import account_pb2 as pb
from services.common.errors import STATUS_OF_REASON, DomainError
from services.common.rpc import fingerprint, to_status

# Copied from API.md "Error model", not from errors.py.
API_TABLE = {
    "INVALID_ARGUMENT": (
        "INVALID_PERSON_ID INVALID_REGION_CODE INVALID_AMOUNT INVALID_DATE INVALID_ARGUMENT"
    ),
    "NOT_FOUND": "ACCOUNT_NOT_FOUND BINDING_NOT_FOUND SETTLEMENT_NOT_FOUND POLICY_NOT_FOUND",
    "ALREADY_EXISTS": "ACCOUNT_EXISTS IDEMPOTENCY_CONFLICT",
    "FAILED_PRECONDITION": (
        "NO_PERSONAL_ACCOUNT BINDER_NOT_EMPLOYEE BENEFICIARY_NOT_INSURED RELATIONSHIP_NOT_ALLOWED "
        "SELF_BINDING IMPLAUSIBLE_RELATIONSHIP BINDING_EXISTS BINDING_LIMIT_REACHED CROSS_PROVINCE "
        "ZERO_BALANCE NOT_BOUND INSUFFICIENT_FUNDS ACCOUNT_SUSPENDED ACCOUNT_CLOSED "
        "ALREADY_CANCELLED SETTLEMENT_NOT_SETTLED SETTLEMENT_ABORTED SETTLEMENT_REVERSED "
        "PREMIUM_ALREADY_PAID BENEFICIARY_NOT_RESIDENT COMMERCIAL_LIMIT_EXCEEDED "
        "WITHDRAWAL_NOT_ALLOWED"
    ),
    "PERMISSION_DENIED": "CREDENTIAL_MISMATCH PERMISSION_DENIED",
    "UNAUTHENTICATED": "UNAUTHENTICATED",
    "ABORTED": "LOCK_TIMEOUT SETTLEMENT_IN_PROGRESS",
    "UNAVAILABLE": "DEPENDENCY_UNAVAILABLE",
}
API_REASONS = [(reason, code) for code, names in API_TABLE.items() for reason in names.split()]


@pytest.mark.parametrize(("reason", "code"), API_REASONS)
def test_every_reason_of_the_api_maps_to_its_status_code(reason, code):
    assert STATUS_OF_REASON[reason] == code
    assert DomainError(reason, "refused").code == code


def test_an_unknown_reason_is_a_programming_error():
    with pytest.raises(ValueError, match="NOT_A_REASON"):
        DomainError("NOT_A_REASON", "whatever")


def test_the_reason_is_the_first_word_of_the_message():
    error = DomainError("BINDING_LIMIT_REACHED", "binder already has 10 active bindings")
    assert str(error) == "BINDING_LIMIT_REACHED: binder already has 10 active bindings"
    assert (error.reason, error.message) == (
        "BINDING_LIMIT_REACHED", "binder already has 10 active bindings",
    )  # fmt: skip


def rich_status(status: grpc.Status) -> status_pb2.Status:
    metadata = dict(status.trailing_metadata)
    decoded = status_pb2.Status()
    decoded.ParseFromString(metadata["grpc-status-details-bin"])
    return decoded


@pytest.mark.parametrize(("reason", "code"), API_REASONS)
def test_to_status_carries_the_code_the_message_and_an_error_info(reason, code):
    status = to_status(DomainError(reason, "because"))
    assert status.code == grpc.StatusCode[code]
    assert status.details == f"{reason}: because"
    decoded = rich_status(status)
    assert decoded.code == grpc.StatusCode[code].value[0]
    assert decoded.message == status.details
    assert len(decoded.details) == 1
    info = error_details_pb2.ErrorInfo()
    assert decoded.details[0].Unpack(info)
    assert (info.domain, info.reason) == ("gongji", reason)


def test_to_status_of_a_refused_binding_is_failed_precondition():  # rule B3
    status = to_status(DomainError("RELATIONSHIP_NOT_ALLOWED", "siblings are not allowed"))
    assert status.code == grpc.StatusCode.FAILED_PRECONDITION
    assert status.details.startswith("RELATIONSHIP_NOT_ALLOWED")


# --- fingerprint: what "the same content" means for idempotency ----------------------------


def credit(**changes: object) -> pb.CreditRequest:
    fields = {
        "person_id": "430102198005170012",
        "amount_fen": 10_000,
        "kind": pb.CREDIT_KIND_MONTHLY_ALLOCATION,
        "memo": "2025-05 allocation",
        "request_id": "r-1",
    }
    return pb.CreditRequest(**{**fields, **changes})


def test_fingerprint_ignores_the_request_id():
    assert fingerprint(credit()) == fingerprint(credit(request_id="r-2"))
    assert fingerprint(credit()) == fingerprint(credit(request_id=""))


@pytest.mark.parametrize(
    "change",
    [
        {"person_id": "610402195503010026"},
        {"amount_fen": 10_001},
        {"kind": pb.CREDIT_KIND_ADJUSTMENT},
        {"memo": "2025-06 allocation"},
        {"memo": ""},
    ],
)
def test_fingerprint_differs_when_any_other_field_differs(change):
    assert fingerprint(credit(**change)) != fingerprint(credit())


def test_fingerprint_leaves_the_request_untouched():
    request = credit()
    fingerprint(request)
    assert request.request_id == "r-1"
    assert request == credit()


def test_fingerprint_works_for_a_request_without_a_request_id():
    get = pb.GetAccountRequest(person_id="430102198005170012")
    assert fingerprint(get) == fingerprint(pb.GetAccountRequest(person_id="430102198005170012"))
    assert fingerprint(get) != fingerprint(pb.GetAccountRequest(person_id="610402195503010026"))


def test_a_refusal_that_repeats_what_was_sent_is_masked_and_cut():  # rule I3
    pid = "430102198005170012"
    status = to_status(DomainError("INVALID_ARGUMENT", f"no such id req{pid}" + "z" * 100_000))
    assert pid not in status.details and "req4301**********0012z" in status.details
    assert len(status.details) < 300 and status.details.endswith("…[cut, 100050 chars]")
    assert rich_status(status).message == status.details
