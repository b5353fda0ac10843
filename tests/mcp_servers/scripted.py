# SPDX-License-Identifier: Apache-2.0
"""A minimal newline-delimited JSON-RPC peer for the ``mcp-wrap`` process tests.

It speaks only what those tests need, so that each run starts in a fraction of the SDK
server's time:

* at start it writes the lines of the JSON array ``SCRIPTED_STDERR`` to standard error and
  sends the requests listed in the JSON array ``SCRIPTED_INITIAL`` (both optional);
* every line it receives is appended to the file ``HAECHI_TEST_RECORD``;
* ``tools/call`` answers ``{"content": [{"type": "text", "text": <arguments.text>}]}``, or,
  when ``arguments.raw`` is given, writes that line as it is with ``@ID`` replaced by the
  request's id in JSON and ``@PAD`` by ``arguments.pad`` letters ``x`` (for answers a JSON
  encoder would not write, or too long to be read);
* ``exit`` exits with ``params.code``; ``kill`` kills itself with SIGKILL;
* SIGTERM is recorded and ends the process with exit code 7; end of input exits with 0.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from typing import Any


def record(data: str) -> None:
    with open(os.environ["HAECHI_TEST_RECORD"], "a", encoding="utf-8") as handle:
        handle.write(data.rstrip("\n") + "\n")


def send(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def on_term(signum: int, frame: Any) -> None:
    record("signal:SIGTERM")
    os._exit(7)


def handle(message: dict[str, Any]) -> None:
    method = message.get("method")
    params = message.get("params") or {}
    if method == "exit":
        os._exit(int(params["code"]))
    if method == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    if "id" not in message or method is None:
        return
    if method == "tools/call" and "raw" in params.get("arguments", {}):
        raw = params["arguments"]["raw"].replace("@ID", json.dumps(message["id"]))
        sys.stdout.write(raw.replace("@PAD", "x" * int(params["arguments"].get("pad", 0))))
        sys.stdout.write("\n")
        sys.stdout.flush()
        return
    if method == "tools/call":
        text = params.get("arguments", {}).get("text", "")
        result: dict[str, Any] = {"content": [{"type": "text", "text": text}]}
    else:
        send({"jsonrpc": "2.0", "id": message["id"], "error": {"code": -32601, "message": "no"}})
        return
    send({"jsonrpc": "2.0", "id": message["id"], "result": result})


def main() -> None:
    signal.signal(signal.SIGTERM, on_term)
    for line in json.loads(os.environ.get("SCRIPTED_STDERR", "[]")):
        sys.stderr.write(line + "\n")
    sys.stderr.flush()
    for message in json.loads(os.environ.get("SCRIPTED_INITIAL", "[]")):
        send(message)
    for line in sys.stdin:
        record(line)
        try:
            message = json.loads(line)
        except ValueError:
            continue
        if isinstance(message, dict):
            handle(message)


if __name__ == "__main__":
    main()
