# SPDX-License-Identifier: Apache-2.0
"""``/__haechi/metrics`` when the exposition cannot be made.

A multi-worker gateway sums its workers' counters from files in a private temporary
directory; a temporary-file cleaner that removes it makes the exposition fail. The scrape
must then get the gateway's own error answer (JSON, correlation id), logged and counted as
an internal error, not the server's bare ``Internal Server Error``.
"""

from __future__ import annotations

import json
import shutil
import signal
from pathlib import Path

import httpx

from haechi.proxy.background import serve_in_thread
from tests.test_proxy_server import _proxy_process, _write_config
from tests.upstream_server import UpstreamServer


def test_a_metrics_exposition_that_fails_is_a_json_internal_error(tmp_path: Path) -> None:
    config = _write_config(tmp_path, "http://127.0.0.1:9", {"logging": {"format": "json"}})
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    workers = _proxy_process(config, "--workers", "2", env={"TMPDIR": str(temporary)})
    with workers as (process, url, _lines):
        assert httpx.get(f"{url}/__haechi/metrics", timeout=30).status_code == 200
        (metrics_dir,) = temporary.glob("haechi-metrics-*")
        shutil.rmtree(metrics_dir)
        answer = httpx.get(f"{url}/__haechi/metrics", timeout=30)
        process.send_signal(signal.SIGTERM)
        _out, err = process.communicate(timeout=30)
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
        config = _write_config(tmp_path, served.url, {"logging": {"format": "json"}})
        temporary = tmp_path / "tmp"
        temporary.mkdir()
        workers = _proxy_process(config, "--workers", "2", env={"TMPDIR": str(temporary)})
        with workers as (process, url, _lines):
            (metrics_dir,) = temporary.glob("haechi-metrics-*")
            shutil.rmtree(metrics_dir)
            chat = {"model": "m", "messages": [{"role": "user", "content": "hello"}]}
            for _ in range(4):  # both workers, each its first request on the route
                with httpx.Client() as client:
                    response = client.post(f"{url}/v1/chat/completions", json=chat, timeout=30)
                    assert response.status_code == 200
            process.send_signal(signal.SIGTERM)
            _out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    levels = [json.loads(line)["level"] for line in err.splitlines()]
    assert "error" not in levels, err
