"""JSON logs: one object per line, a severity field, person ids masked (docs/RULES.md I3), and every
text cut to a bound, so that no line passes 2 KB whatever a caller sends."""

import datetime as dt
import io
import itertools
import json
import logging

from services.common.ids import make_person_id
from services.common.logs import LINE_LIMIT, TEXT_LIMIT, JsonFormatter, clean, mask_ids

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
        "amount 1000000 fen, settlement S3a1234567890123456789abc0, "
        "19 digits 1234567890123456789, 17 digits 43010219800517001"
    )
    assert mask_ids(text) == text


def test_a_person_id_glued_to_letters_is_masked():  # rule I3
    assert mask_ids(f"req{PID}abc") == f"req{MASKED}abc"
    assert mask_ids("req11010519491231002xyz") == "req1101**********002xyz"


def test_a_number_with_a_person_id_inside_is_masked_whole():  # rule I3
    assert mask_ids(f"9{PID}77") == f"9430{'*' * 13}1277"
    settlement = "H43010500001202506011200000001"  # an id may start at its 6th digit
    assert mask_ids(settlement) == "H4301*********************0001"


def test_every_valid_person_id_is_masked_wherever_it_is():  # rule I3
    for region, year in itertools.product(("110105", "820000"), (1900, 1949, 1999, 2000, 2025)):
        pid = make_person_id(region, dt.date(year, 12, 31), 999)
        for text in (pid, f"a{pid}b", f"1{pid}", f"{pid}1", f"{pid}{pid}"):
            assert pid not in mask_ids(text) and "*" * 10 in mask_ids(text), text


def test_a_short_text_is_only_masked():  # rule I3
    assert clean(f"payer {PID}") == f"payer {MASKED}"


def test_a_long_text_is_cut_to_256_characters_and_says_how_long_it_was():
    cut = clean("r" * 1_000_000)
    assert cut == "r" * TEXT_LIMIT + "…[cut, 1000000 chars]"


def test_a_person_id_across_the_cut_is_masked_not_half_shown():  # rule I3
    for at in range(TEXT_LIMIT - 20, TEXT_LIMIT + 1):
        cut = clean("r" * at + PID + "r" * 1000)
        assert PID[:10] not in cut and PID[-10:] not in cut, at


def emit_exception(error: Exception, message: str, *args: object, **kwargs: object) -> str:
    try:
        raise error
    except type(error):
        return emit(logging.ERROR, message, *args, exc_info=True, **kwargs)


def test_no_log_line_passes_2_kb_whatever_its_message_fields_and_exception():
    for hostile in ("r" * 1_000_000, "\x00" * 1_000_000, "字" * 1_000_000, PID * 50_000):
        fields: dict[str, object] = {"nested": [hostile, {"id": hostile}]}
        fields |= {name: hostile for name in ("method", "caller", "code", "reason", "request_id")}
        output = emit_exception(ValueError(hostile), "%s", hostile, extra={"fields": fields})
        assert len(output.encode()) <= LINE_LIMIT + 1, (hostile[:3], len(output.encode()))
        assert PID not in output
        entry = json.loads(output)
        assert f"[cut, {len(hostile)} chars]" in entry["message"]
        assert "ValueError" in entry["exception"]


def test_a_refused_request_s_long_request_id_is_cut_in_its_log_line():
    fields = {"method": "/gongji.settlement.v1.SettlementService/Settle", "code": "OK",
              "request_id": f"req{PID}" + "r" * 1_000_000}  # fmt: skip
    entry = json.loads(emit(logging.INFO, "rpc", extra={"fields": fields}))
    assert entry["request_id"].startswith(f"req{MASKED}rrr")
    assert entry["request_id"].endswith("…[cut, 1000021 chars]")
    assert entry["code"] == "OK"


def test_a_long_traceback_keeps_its_end_with_the_error():
    error: Exception | None = None
    for step in range(30):  # a chain of 30 exceptions, each the cause of the next
        try:
            raise ValueError(f"step {step}") from error
        except ValueError as e:
            error = e
    try:
        raise KeyError(f"no account for {PID}") from error
    except KeyError:
        output = emit(logging.ERROR, "unexpected error", exc_info=True)
    exception = json.loads(output)["exception"]
    assert exception.startswith("[") and "earlier parts cut]" in exception.splitlines()[0]
    assert exception.endswith(f"KeyError: 'no account for {MASKED}'\n")
    assert len(exception) <= 4 * TEXT_LIMIT + 30
