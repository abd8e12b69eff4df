"""JSON logs, one object per line, with a severity field and person ids masked (rule I3)."""

from __future__ import annotations

import logging
import re
import sys
import time
from typing import Any

import orjson

from services.common.ids import mask

# 18-character resident ids (17 digits and a check character) anywhere in a message.
_PERSON_ID = re.compile(r"(?<![0-9A-Za-z])[0-9]{17}[0-9Xx](?![0-9A-Za-z])")


def mask_ids(text: str) -> str:
    return _PERSON_ID.sub(lambda m: mask(m.group(0)), text)


def _masked(value: Any) -> Any:
    """Any JSON-able value with the person ids in it masked."""
    if isinstance(value, str):
        return mask_ids(value)
    if isinstance(value, int | float | bool) or value is None:
        return value
    return orjson.loads(mask_ids(orjson.dumps(value, default=str).decode()))


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            key: _masked(value) for key, value in getattr(record, "fields", {}).items()
        }
        entry["time"] = (
            time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z"
        )
        entry["severity"] = record.levelname
        entry["logger"] = record.name
        entry["message"] = mask_ids(record.getMessage())
        if record.exc_info:
            entry["exception"] = mask_ids(self.formatException(record.exc_info))
        return orjson.dumps(entry).decode()


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
