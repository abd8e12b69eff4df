"""JSON logs: one object per line, a severity field, person ids masked (DOMAIN I3)."""

import io
import json
import logging

from services.common.logs import JsonFormatter, mask_ids

PID = "430102198005170012"
MASKED = "4301**********0012"


def emit(level: int, message: str, *args: object, **kwargs: object) -> str:
    """What one log call writes through the JsonFormatter."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("tests.unit.logs")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    try:
        logger.log(level, message, *args, **kwargs)
    finally:
        logger.removeHandler(handler)
    return stream.getvalue()


def test_a_log_line_is_one_json_object_with_a_severity():
    output = emit(logging.WARNING, "lock lost")
    assert output.endswith("\n") and output.count("\n") == 1
    entry = json.loads(output)
    assert isinstance(entry, dict)
    assert entry["severity"] == "WARNING"
    assert entry["message"] == "lock lost"
    assert entry["logger"] == "tests.unit.logs"


def test_fields_are_top_level_keys_of_the_object():
    entry = json.loads(emit(logging.INFO, "rpc", extra={"fields": {"code": "OK", "ms": 1.5}}))
    assert (entry["severity"], entry["code"], entry["ms"]) == ("INFO", "OK", 1.5)


def test_a_person_id_in_the_message_is_masked():  # rule I3
    output = emit(logging.INFO, f"opened account {PID} in 430100")
    assert PID not in output
    assert json.loads(output)["message"] == f"opened account {MASKED} in 430100"


def test_a_person_id_in_a_format_argument_is_masked():  # rule I3
    output = emit(logging.ERROR, "binder %s refused", PID)
    assert PID not in output
    assert json.loads(output)["message"] == f"binder {MASKED} refused"


def test_a_person_id_in_the_fields_is_masked():  # rule I3
    fields = {"person_id": PID, "note": f"payer {PID} skipped", "amount_fen": 500}
    output = emit(logging.INFO, "settle", extra={"fields": fields})
    assert PID not in output
    entry = json.loads(output)
    assert entry["person_id"] == MASKED
    assert entry["note"] == f"payer {MASKED} skipped"
    assert entry["amount_fen"] == 500


def test_a_person_id_inside_chinese_text_and_with_a_lower_case_x_is_masked():  # rule I3
    output = emit(logging.INFO, "参保人11010519491231002x已开户")
    assert "11010519491231002" not in output
    assert json.loads(output)["message"] == "参保人1101**********002x已开户"


def test_a_person_id_in_an_exception_is_masked():  # rule I3
    try:
        raise KeyError(f"no account for {PID}")
    except KeyError:
        output = emit(logging.ERROR, "unexpected error", exc_info=True)
    assert PID not in output
    assert MASKED in json.loads(output)["exception"]


def test_other_numbers_are_left_alone():
    text = (
        "amount 1000000 fen, settlement H43010500001202506011200000001, "
        "19 digits 1234567890123456789, 17 digits 43010219800517001"
    )
    assert mask_ids(text) == text
