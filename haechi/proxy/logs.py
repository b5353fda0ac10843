# SPDX-License-Identifier: Apache-2.0
"""Operational logs of the gateway: one event name plus a few safe fields per line.

Log lines never carry payloads, headers, tokens or identities: callers pass an event name
and fields such as ``correlationId``, ``errorName`` or ``statusCode`` only. Two formats
(``logging.format``):

- ``json``: one JSON object per line (``{"time", "level", "event", ...fields}``).
- ``text``: the human line of the event when it has one (the startup banner), else
  ``haechi <event>: key=value ...``.

Info goes to stdout, warnings and errors to stderr. A line that cannot be written is
dropped without a report.

uvicorn's own warnings and errors (for example the tasks it cancels when the shutdown grace
runs out), the event loop's (asyncio's report of a callback that raised or of a task whose
exception nobody retrieved), those of haechi's other parts (``haechi.crypto``'s encryption
budget, ``haechi.plugins``' confinement) and Python warnings (``<category>: <message>``) go
through the same handlers as the event ``server_message``, with the first line of the
message (of an event loop message, only its words before the first other character: asyncio
names a callback with the repr of its arguments) and, when an exception was logged, only its
class as ``errorName``: never a traceback or the exception's text, which could quote a value.
Nothing the process logs reaches Python's last-resort handler or its raw warning output,
whose lines are neither of the two formats. Nor does Python's report of an exception
nothing could catch (raised by a finalizer, ``Exception ignored in``, or by a thread,
``Exception in thread``): it is a traceback with the exception's text, logged instead as a
``server_message`` error with the class only.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
import time
import warnings
from typing import Any, Final, Literal, TextIO

__all__ = ["LOGGER", "configure_logging", "log_event"]

LOGGER: Final = logging.getLogger("haechi.proxy")
_SERVER: Final = logging.getLogger("uvicorn")
_LOOP: Final = logging.getLogger("asyncio")
_PARTS: Final = logging.getLogger("haechi")
_WARNINGS: Final = logging.getLogger("py.warnings")
_UNCAUGHT: Final = logging.getLogger("haechi.uncaught")
_LOOP_DETAIL: Final = re.compile(r"[^A-Za-z0-9 _.]")
_FIELDS: Final = "haechi_fields"
_TEXT: Final = "haechi_text"


def log_event(level: int, event: str, *, text: str | None = None, **fields: Any) -> None:
    """Log ``event`` with ``fields``; ``text`` is the human form used by the text format."""
    if LOGGER.isEnabledFor(level):
        LOGGER.log(level, event, extra={_FIELDS: fields, _TEXT: text})


def _event_and_fields(record: logging.LogRecord) -> tuple[str, dict[str, Any]]:
    """The event name and fields of ``record``: a haechi event as logged, any other record
    (uvicorn's, the event loop's, haechi's other parts', a Python warning) as
    ``server_message`` with its first line and its exception's class only."""
    fields = getattr(record, _FIELDS, None)
    if fields is not None:
        return record.getMessage(), fields
    message = record.getMessage().strip().split("\n", 1)[0]
    if record.name == _LOOP.name:
        # asyncio names the callback with the repr of its arguments ("Exception in callback
        # Protocol.data_received(b'...')"): only the words before any such detail are kept.
        message = _LOOP_DETAIL.split(message, 1)[0].rstrip()
    server: dict[str, Any] = {"message": message}
    if record.exc_info and record.exc_info[0] is not None:
        server["errorName"] = record.exc_info[0].__name__
    return "server_message", server


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        event, fields = _event_and_fields(record)
        document = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "event": event,
        }
        document.update(fields)
        return json.dumps(document, ensure_ascii=False, default=str)


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = getattr(record, _TEXT, None)
        if text:
            return str(text)
        event, fields = _event_and_fields(record)
        pairs = " ".join(f"{key}={value}" for key, value in fields.items())
        return f"haechi {event}: {pairs}".rstrip(": ").rstrip()


def _log_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    """Log a Python warning as ``<category>: <message>`` (the replacement of
    :func:`warnings.showwarning`), without the file, line and source Python prints."""
    _WARNINGS.warning("%s: %s", category.__name__, message)


def _log_unraisable(unraisable: sys.UnraisableHookArgs) -> None:
    """Log an exception raised where nothing can catch it (a finalizer, a callback of the
    garbage collector): the replacement of :func:`sys.unraisablehook`, which prints the
    object's repr, a traceback and the exception's text. Python's own message is kept up to
    its first other character, as an event loop message."""
    message = _LOOP_DETAIL.split(unraisable.err_msg or "Exception ignored in", 1)[0]
    _log_uncaught(message.rstrip(), unraisable.exc_type)


def _log_thread_failure(failure: threading.ExceptHookArgs) -> None:
    """Log an exception that ended a thread: the replacement of :func:`threading.excepthook`,
    which prints a traceback and the exception's text."""
    if failure.exc_type is not SystemExit:  # a thread that exits is no failure (as Python)
        _log_uncaught("Exception in thread", failure.exc_type)


def _log_uncaught(message: str, error: type[BaseException]) -> None:
    """Log ``message`` as a ``server_message`` error naming the class of ``error`` only."""
    fields = {"message": message, "errorName": error.__name__}
    _UNCAUGHT.error("server_message", extra={_FIELDS: fields, _TEXT: None})


class _Stream(logging.StreamHandler[TextIO]):
    """A stream handler that drops a line it cannot write.

    Python's default reports such a failure (a stdout whose reader went away, a full disk)
    on stderr as a traceback of many lines with the record's message and arguments: not a
    line of either format, and a second write that fails the same way on a broken stderr.
    The line is lost; requests are not affected (the audit log is the record of decisions).
    """

    def handleError(self, record: logging.LogRecord) -> None:
        return


class _BelowWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno < logging.WARNING


def configure_logging(log_format: Literal["text", "json"]) -> None:
    """Send gateway logs to stdout (info) and stderr (warnings, errors) in ``log_format``,
    and the warnings and errors of uvicorn, of the event loop, of haechi's other parts and
    Python's warnings the same way (the server is then started without a logging
    configuration of its own, see ``uvicorn_options``)."""
    formatter = _JsonFormatter() if log_format == "json" else _TextFormatter()
    out = _Stream(sys.stdout)
    out.addFilter(_BelowWarning())
    err = _Stream(sys.stderr)
    err.setLevel(logging.WARNING)
    for handler in (out, err):
        handler.setFormatter(formatter)
    for logger, level in (
        (LOGGER, logging.INFO),
        (_SERVER, logging.WARNING),
        (_LOOP, logging.WARNING),
        (_PARTS, logging.WARNING),
        (_WARNINGS, logging.WARNING),
    ):
        for existing in list(logger.handlers):
            logger.removeHandler(existing)
        logger.addHandler(out)
        logger.addHandler(err)
        logger.setLevel(level)
        logger.propagate = False
    warnings.showwarning = _log_warning
    sys.unraisablehook = _log_unraisable
    threading.excepthook = _log_thread_failure
