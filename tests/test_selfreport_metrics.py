# SPDX-License-Identifier: Apache-2.0
"""``/__haechi/metrics`` when the exposition cannot be made.

A multi-worker gateway sums its workers' counters from files in a private temporary
directory; a temporary-file cleaner that removes it makes the exposition fail. The scrape
must then get the gateway's own error answer (JSON, correlation id), logged and counted as
an internal error, not the server's bare ``Internal Server Error``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from haechi.crypto import init_key_file
from haechi.proxy.background import serve_in_thread
from tests.upstream_server import UpstreamServer, gateway_config


def test_a_metrics_exposition_that_fails_is_a_json_internal_error(tmp_path: Path) -> None:
    settings = gateway_config(tmp_path, "http://127.0.0.1:9", {"logging": {"format": "json"}})
    init_key_file(settings["keys"]["keyFile"])
    config = tmp_path / "haechi.config.json"
    config.write_text(json.dumps(settings))
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HAECHI_")}
    command = [sys.executable, "-m", "haechi", "proxy", "--config", str(config), "--port", "0"]
    process = subprocess.Popen(
        [*command, "--workers", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env={**env, "TMPDIR": str(temporary)},
    )
    try:
        assert process.stdout is not None
        listening = json.loads(process.stdout.readline())
        url = f"http://127.0.0.1:{listening['port']}/__haechi/metrics"
        assert httpx.get(url, timeout=30).status_code == 200
        (metrics_dir,) = temporary.glob("haechi-metrics-*")
        shutil.rmtree(metrics_dir)
        answer = httpx.get(url, timeout=30)
        process.send_signal(signal.SIGTERM)
        _out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
    assert answer.status_code == 500
    assert answer.headers["content-type"] == "application/json"
    assert answer.json() == {"error": "haechi_proxy_error", "message": "Internal proxy error"}
    correlation_id = answer.headers["x-haechi-correlation-id"]
    events = [json.loads(line) for line in err.splitlines()]
    failures = [event for event in events if event["event"] == "proxy_internal_error"]
    assert [(event["correlationId"], event["errorName"]) for event in failures] == [
        (correlation_id, "ValueError")
    ]


def test_requests_are_served_and_logged_cleanly_when_counting_fails(tmp_path: Path) -> None:
    """The same removal makes a new series impossible to create (its worker's file for the
    kind of metric cannot be opened): the request is unaffected, and the sample is dropped
    without the error each request otherwise logged after its answer."""
    upstream = UpstreamServer()
    with serve_in_thread(upstream) as served:
        settings = gateway_config(tmp_path, served.url, {"logging": {"format": "json"}})
        init_key_file(settings["keys"]["keyFile"])
        config = tmp_path / "haechi.config.json"
        config.write_text(json.dumps(settings))
        temporary = tmp_path / "tmp"
        temporary.mkdir()
        env = {k: v for k, v in os.environ.items() if not k.startswith("HAECHI_")}
        command = [sys.executable, "-m", "haechi", "proxy", "--config", str(config)]
        process = subprocess.Popen(
            [*command, "--port", "0", "--workers", "2"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=tmp_path,
            env={**env, "TMPDIR": str(temporary)},
        )
        try:
            assert process.stdout is not None
            listening = json.loads(process.stdout.readline())
            (metrics_dir,) = temporary.glob("haechi-metrics-*")
            shutil.rmtree(metrics_dir)
            url = f"http://127.0.0.1:{listening['port']}/v1/chat/completions"
            chat = {"model": "m", "messages": [{"role": "user", "content": "hello"}]}
            for _ in range(4):  # both workers, each its first request on the route
                with httpx.Client() as client:
                    assert client.post(url, json=chat, timeout=30).status_code == 200
            process.send_signal(signal.SIGTERM)
            _out, err = process.communicate(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)
    assert process.returncode == 0, err
    levels = [json.loads(line)["level"] for line in err.splitlines()]
    assert "error" not in levels, err
