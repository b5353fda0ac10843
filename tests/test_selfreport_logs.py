# SPDX-License-Identifier: Apache-2.0
"""Everything a running gateway prints comes through its log format.

The gateway's parts other than the proxy log on loggers of their own (``haechi.crypto``
warns when the key's encryption budget cannot be persisted or is half spent,
``haechi.plugins`` when a plugin runs without confinement layers) and the nonce budget is
also a Python warning. In a gateway process those must come as the configured lines — one
JSON object per line in ``json`` — and never as Python's raw last-resort or warning output
(a file path, a source line, a message of several lines).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from haechi.proxy.background import serve_in_thread
from tests.test_proxy_server import _proxy_process, _write_config
from tests.upstream_server import UpstreamServer

EMAIL = "jane.doe@example.com"
CARD = "4111111111111111"


def _run_gateway_encrypting_with_a_read_only_key(tmp_path: Path, log_format: str) -> str:
    """Serve one request whose e-mail address is encrypted under a key file the gateway
    cannot write (its budget is then counted in memory, and that is warned about); return
    what the process printed on stdout and stderr."""
    upstream = UpstreamServer()
    with serve_in_thread(upstream) as served:
        extra = {"policy": {"actions": {"email": "encrypt"}}, "logging": {"format": log_format}}
        config = _write_config(tmp_path, served.url, extra)
        Path(json.loads(config.read_text())["keys"]["keyFile"]).chmod(0o400)
        with _proxy_process(config) as (process, url, lines):
            answer = httpx.post(
                f"{url}/v1/chat/completions",
                json={"model": "m", "messages": [{"role": "user", "content": f"mail {EMAIL}"}]},
                timeout=30,
            )
            assert answer.status_code == 200
            assert EMAIL not in upstream.last.text
            process.send_signal(signal.SIGINT)
            out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    return "".join(lines) + out + err


def test_warnings_of_other_parts_are_json_lines(tmp_path: Path) -> None:
    printed = _run_gateway_encrypting_with_a_read_only_key(tmp_path, "json")
    events = [json.loads(line) for line in printed.splitlines()]
    assert all(isinstance(event, dict) for event in events)
    budget = [
        event
        for event in events
        if event["event"] == "server_message"
        and "HAECHI_NONCE_BUDGET_NOPERSIST" in event["message"]
    ]
    assert budget
    assert {event["level"] for event in budget} == {"warning"}
    assert EMAIL not in printed


def test_warnings_of_other_parts_are_text_lines(tmp_path: Path) -> None:
    printed = _run_gateway_encrypting_with_a_read_only_key(tmp_path, "text")
    banner = ("Haechi proxy ", "Upstream: ", "Mode: ", "Warning: ")
    lines = printed.splitlines()
    assert all(line.startswith(("haechi ", *banner)) for line in lines), lines
    assert any(
        line.startswith("haechi server_message: message=HAECHI_NONCE_BUDGET_NOPERSIST")
        for line in lines
    )
    assert EMAIL not in printed


@pytest.mark.parametrize("log_format", ["json", "text"])
def test_a_log_stream_that_is_gone_costs_its_lines_only(tmp_path: Path, log_format: str) -> None:
    """stdout whose reader went away (``haechi proxy | head -1``): the lines written there
    after are lost, and nothing else is printed in their place (Python's "Logging error"
    report is a traceback of many lines, in neither format)."""
    config = _write_config(tmp_path, "http://127.0.0.1:9", {"logging": {"format": log_format}})
    read_end, write_end = os.pipe()
    process = subprocess.Popen(
        [sys.executable, "-m", "haechi", "proxy", "--config", str(config), "--port", "0"],
        stdout=write_end,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if not k.startswith("HAECHI_")},
    )
    os.close(write_end)
    try:
        with os.fdopen(read_end, "rb") as stdout:
            assert stdout.readline()  # the first startup line; then the reader is gone
        process.send_signal(signal.SIGTERM)  # logs proxy_shutdown on the broken stdout
        _out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
    assert process.returncode == 0, err
    assert "Traceback" not in err
    assert "Logging error" not in err
    if log_format == "json":
        assert all(isinstance(json.loads(line), dict) for line in err.splitlines())
    else:
        assert err.splitlines() == [
            "Warning: responseProtection.enabled is false: responses are not inspected."
        ]
