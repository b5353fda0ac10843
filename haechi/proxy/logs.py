# SPDX-License-Identifier: Apache-2.0
"""Operational logs of the gateway: one event name plus a few safe fields per line.

Log lines never carry payloads, headers, tokens or identities: callers pass an event name
and fields such as ``correlationId``, ``errorName`` or ``statusCode`` only. Two formats
(``logging.format``):

- ``json``: one JSON object per line (``{"time", "level", "event", ...fields}``).
- ``text``: the human line of the event when it has one (the startup banner), else
  ``haechi <event>: key=value ...``.

Info goes to stdout, warnings and errors to stderr.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any, Final, Literal

__all__ = ["LOGGER", "configure_logging", "log_event"]

LOGGER: Final = logging.getLogger("haechi.proxy")
_FIELDS: Final = "haechi_fields"
_TEXT: Final = "haechi_text"


def log_event(level: int, event: str, *, text: str | None = None, **fields: Any) -> None:
    """Log ``event`` with ``fields``; ``text`` is the human form used by the text format."""
    if LOGGER.isEnabledFor(level):
        LOGGER.log(level, event, extra={_FIELDS: fields, _TEXT: text})


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        document = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "event": record.getMessage(),
        }
        document.update(getattr(record, _FIELDS, None) or {})
        return json.dumps(document, ensure_ascii=False, default=str)


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = getattr(record, _TEXT, None)
        if text:
            return str(text)
        fields = getattr(record, _FIELDS, None) or {}
        pairs = " ".join(f"{key}={value}" for key, value in fields.items())
        return f"haechi {record.getMessage()}: {pairs}".rstrip(": ").rstrip()


class _BelowWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno < logging.WARNING


def configure_logging(log_format: Literal["text", "json"]) -> None:
    """Send gateway logs to stdout (info) and stderr (warnings, errors) in ``log_format``."""
    formatter = _JsonFormatter() if log_format == "json" else _TextFormatter()
    out = logging.StreamHandler(sys.stdout)
    out.addFilter(_BelowWarning())
    err = logging.StreamHandler(sys.stderr)
    err.setLevel(logging.WARNING)
    for handler in (out, err):
        handler.setFormatter(formatter)
    for existing in list(LOGGER.handlers):
        LOGGER.removeHandler(existing)
    LOGGER.addHandler(out)
    LOGGER.addHandler(err)
    LOGGER.setLevel(logging.INFO)
    LOGGER.propagate = False
