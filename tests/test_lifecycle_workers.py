# SPDX-License-Identifier: Apache-2.0
"""``haechi proxy --workers N`` stopping: what is drained and what is refused (real processes,
real sockets)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from pathlib import Path

import httpx
import pytest

from haechi.proxy.background import serve_in_thread
from tests.test_proxy_server import _proxy_process, _write_config, slow_chats
from tests.test_proxy_workers import _workers
from tests.upstream_server import UpstreamServer


def _answer_after_sigterm(host: str, port: int) -> bytes:
    """Connect and ask once the stop is under way; what came back (nothing when refused)."""
    try:
        with socket.create_connection((host, port), timeout=20) as sock:
            sock.sendall(b"GET /__haechi/live HTTP/1.1\r\nhost: x\r\n\r\n")
            return sock.recv(65536)
    except OSError:  # refused, or reset with the listen queue
        return b""


def _until_shutdown_line(process: subprocess.Popen[str], name: str = "SIGTERM") -> None:
    """Read the gateway's output up to its ``proxy_shutdown`` line for signal ``name``."""
    assert process.stdout is not None
    for line in process.stdout:
        if f"shutting down ({name})" in line:
            return
    raise AssertionError("the gateway ended without its shutdown line")


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGHUP], ids=lambda s: s.name)
def test_a_stop_signal_deals_no_more_connections_and_drains_the_workers(
    tmp_path: Path, stop: signal.Signals
) -> None:
    upstream = UpstreamServer()
    with serve_in_thread(upstream) as up:
        config = _write_config(tmp_path, up.url, {"limits": {"shutdownGraceMs": 10000}})
        with _proxy_process(config, "--workers", "2") as (process, url, _lines):
            host, port = url.removeprefix("http://").split(":")
            threads, results = slow_chats(url, upstream, 2, delay=1.5)
            process.send_signal(stop)
            _until_shutdown_line(process, stop.name)
            late = _answer_after_sigterm(host, int(port))
            for thread in threads:
                thread.join()
            assert process.wait(timeout=30) == 0
    assert late == b""
    assert [r.status_code for r in results] == [200, 200]
    assert all("slow but complete" in r.text for r in results)


def test_a_worker_that_takes_no_connections_is_handed_no_more(tmp_path: Path) -> None:
    upstream = UpstreamServer()
    with serve_in_thread(upstream) as up:
        config = _write_config(tmp_path, up.url)
        with _proxy_process(config, "--workers", "2") as (process, url, _lines):
            stuck = _workers(process.pid)[0]
            os.kill(stuck, signal.SIGSTOP)  # as a worker whose loop never comes back
            try:
                answers: list[int | str] = []
                for _ in range(6):  # a new connection each
                    try:
                        answers.append(httpx.get(f"{url}/__haechi/live", timeout=5).status_code)
                    except httpx.TimeoutException as exc:
                        answers.append(type(exc).__name__)
            finally:
                os.kill(stuck, signal.SIGCONT)
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=30) == 0
    # Only the connection handed over before the worker was seen not to take it hangs.
    assert answers.count(200) >= 5, answers
