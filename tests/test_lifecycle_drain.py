# SPDX-License-Identifier: Apache-2.0
"""``haechi proxy`` stopping in one process: what is drained and what is refused (a real
process, real sockets)."""

from __future__ import annotations

import json
import signal
import socket
import threading
from pathlib import Path

import pytest

from haechi.proxy.background import serve_in_thread
from tests.test_lifecycle_workers import _answer_after_sigterm, _until_shutdown_line
from tests.test_proxy_server import (
    _CHAT_REQUEST,
    _proxy_process,
    _sigterm_with_a_hung_request,
    _write_config,
    slow_chats,
)
from tests.upstream_server import Reply, UpstreamServer


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGHUP], ids=lambda s: s.name)
def test_a_stop_signal_closes_the_listener_at_once_and_drains_in_flight_requests(
    tmp_path: Path, stop: signal.Signals
) -> None:
    upstream = UpstreamServer()
    with serve_in_thread(upstream) as up:
        config = _write_config(tmp_path, up.url, {"limits": {"shutdownGraceMs": 10000}})
        with _proxy_process(config) as (process, url, _lines):
            host, port = url.removeprefix("http://").split(":")
            (slow,), results = slow_chats(url, upstream, 1, delay=1.5)
            process.send_signal(stop)
            _until_shutdown_line(process, stop.name)
            late = _answer_after_sigterm(host, int(port))
            slow.join()
            assert process.wait(timeout=30) == 0
    assert late == b""
    assert results[0].status_code == 200
    assert "slow but complete" in results[0].text


def test_a_request_cut_at_the_end_of_the_grace_gets_the_gateways_json_error(
    tmp_path: Path,
) -> None:
    cut = _sigterm_with_a_hung_request(tmp_path, grace_ms=300, env={})
    head, _, body = cut.hung_answer.partition(b"\r\n\r\n")
    lines = head.decode().lower().split("\r\n")
    assert lines[0] == "http/1.1 500 internal server error"
    assert "content-type: application/json" in lines
    assert "cache-control: no-store" in lines
    assert any(line.startswith("x-haechi-correlation-id: ") for line in lines)
    assert json.loads(body)["error"] == "haechi_proxy_error"
    assert cut.exit_code == 0


def test_a_request_waiting_behind_the_one_in_flight_is_not_started_after_a_stop(
    tmp_path: Path,
) -> None:
    upstream = UpstreamServer()
    upstream.queue(Reply(delay=1.5, text="in flight"), Reply(text="waiting"))
    with serve_in_thread(upstream) as up:
        config = _write_config(tmp_path, up.url, {"limits": {"shutdownGraceMs": 10000}})
        with _proxy_process(config) as (process, url, _lines):
            host, port = url.removeprefix("http://").split(":")
            with socket.create_connection((host, int(port)), timeout=20) as sock:
                sock.sendall(_CHAT_REQUEST + _CHAT_REQUEST)  # pipelined
                for _ in range(1000):
                    if upstream.received:
                        break
                    threading.Event().wait(0.01)
                process.send_signal(signal.SIGTERM)
                _until_shutdown_line(process)
                answers = b""
                while chunk := sock.recv(65536):
                    answers += chunk
            assert process.wait(timeout=30) == 0
    # The answer in flight is out whole, then the connection ends: the request behind it
    # never reached the upstream (a client retries a request left unanswered).
    assert answers.count(b"HTTP/1.1 ") == 1
    assert answers.startswith(b"HTTP/1.1 200")
    assert b"in flight" in answers
    assert len(upstream.received) == 1
