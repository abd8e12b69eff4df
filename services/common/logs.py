"""JSON logs, one object per line, with a severity field and person ids masked (rule I3).

Whatever a caller sends reaches a line only through `clean`: person ids masked and every text
cut to a bound, so that no request can fill the disks (one line is at most about 2 KB).
"""

from __future__ import annotations

import logging
import re
import sys
import time
import traceback
from types import TracebackType
from typing import Any

import orjson

from services.common.ids import mask

TEXT_LIMIT = 256  # characters of one text in a log line or an error message
LINE_LIMIT = 2048  # bytes of one log line
_MARGIN = 32  # characters read past a cut, so that an id across it is seen whole and masked
# Runs of 18 or more digits (the last may be the check character X), wherever they are: glued
# to letters, or inside a longer number. A run is masked whole when an id may start in it: a
# province's first digit 1-8, and a birth year 19xx or 20xx six digits in (rule I1), which
# most other long numbers, such as the digits in a hexadecimal id, do not have.
_DIGITS = re.compile(r"[0-9]{17,}[0-9Xx]")
_ID = re.compile(r"[1-8][0-9]{5}(?:19|20)[0-9]{9}[0-9Xx]")

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]


def mask_ids(text: str) -> str:
    """`text` with every person id in it masked (rule I3), and the digits around one with it."""
    return _DIGITS.sub(lambda m: mask(m[0]) if _ID.search(m[0]) else m[0], text)


def clean(text: str, limit: int = TEXT_LIMIT) -> str:
    """`text` fit for a log line or an error message: person ids masked, and cut to `limit`
    characters with a mark of how long it was."""
    if len(text) <= limit:
        return mask_ids(text)
    return mask_ids(text[: limit + _MARGIN])[:limit] + f"…[cut, {len(text)} chars]"


def _field(value: Any, limit: int) -> Any:
    """A field as its line shows it: a bool, a float or None as it is; anything else cleaned as
    its JSON text, and left as it was when cleaning changed nothing."""
    if isinstance(value, bool | float) or value is None:
        return value
    text = value if isinstance(value, str) else orjson.dumps(value, default=str).decode()
    cleaned = clean(text, limit)
    return value if cleaned == text else cleaned


def _traceback(exc_info: ExcInfo, limit: int) -> str:
    """The end of a traceback, where its error is: each part (a frame, a message) cleaned, and
    as many of the last ones as fit in 4 x `limit` characters."""
    parts = [clean(part, limit) for part in traceback.format_exception(*exc_info)]
    kept: list[str] = []
    while parts and sum(map(len, kept)) + len(parts[-1]) <= 4 * limit:
        kept.insert(0, parts.pop())
    return (f"[{len(parts)} earlier parts cut]\n" if parts else "") + "".join(kept)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = self._line(record, TEXT_LIMIT)
        if len(line) > LINE_LIMIT:  # escaped controls, wide characters: up to 6 bytes each
            line = self._line(record, TEXT_LIMIT // 8)
        return line.decode()

    def _line(self, record: logging.LogRecord, limit: int) -> bytes:
        entry: dict[str, Any] = {
            key: _field(value, limit) for key, value in getattr(record, "fields", {}).items()
        }
        entry["time"] = (
            time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z"
        )
        entry["severity"] = record.levelname
        entry["logger"] = record.name
        entry["message"] = clean(record.getMessage(), limit)
        if record.exc_info and record.exc_info[0] is not None:
            entry["exception"] = _traceback(record.exc_info, limit)
        return orjson.dumps(entry)


def setup(level: str = "INFO") -> None:
    # What the JSON lines do not show is not gathered for every record (the logging HOWTO,
    # "Optimization"): the caller's file and line, thread, process and multiprocessing names.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
