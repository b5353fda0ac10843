# SPDX-License-Identifier: Apache-2.0
"""``haechi proxy --workers N``: several real gateway processes on one port."""

from __future__ import annotations

import os
import re
import signal
import ssl
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from haechi.proxy.background import serve_in_thread
from tests.cli import json_output, run_haechi
from tests.test_proxy_server import HAECHI, _certificate, _proxy_process, _write_config
from tests.upstream_server import UpstreamServer

_EMAIL = "jane.doe@example.com"


def _workers(parent: int) -> list[int]:
    """The worker processes of a supervisor (not multiprocessing's resource tracker)."""
    children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
    found = []
    for child in children:
        try:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
        except FileNotFoundError:
            continue
        if b"spawn_main" in cmdline:
            found.append(int(child))
    return found


def _bytes_written(pid: int) -> int:
    match = re.search(r"^wchar: (\d+)$", Path(f"/proc/{pid}/io").read_text(), re.MULTILINE)
    assert match is not None
    return int(match.group(1))


def _requests_total(url: str) -> float:
    text = httpx.get(f"{url}/__haechi/metrics", timeout=10).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("haechi_requests_total{")
    )


def test_workers_share_the_port_the_audit_chain_and_the_metrics(tmp_path: Path) -> None:
    upstream = UpstreamServer()
    with serve_in_thread(upstream) as up:
        config = _write_config(tmp_path, up.url)
        with _proxy_process(config, "--workers", "2") as (process, url, _lines):
            assert url.startswith("http://127.0.0.1:")
            workers = _workers(process.pid)
            assert len(workers) == 2
            before = {pid: _bytes_written(pid) for pid in workers}
            total = 24
            for _ in range(total):
                # A fresh connection each time: connections are dealt out, not requests.
                with httpx.Client() as client:
                    response = client.post(
                        f"{url}/v1/chat/completions",
                        json={"model": "m", "messages": [{"role": "user", "content": _EMAIL}]},
                        timeout=10,
                    )
                assert response.status_code == 200
            assert all(_EMAIL not in received.text for received in upstream.received)
            assert len(upstream.received) == total
            # Both processes answered some of the connections.
            assert all(_bytes_written(pid) > before[pid] for pid in workers)
            # Whichever worker answers the scrape, it counts every worker's requests.
            deadline = time.monotonic() + 5
            while _requests_total(url) < total and time.monotonic() < deadline:
                time.sleep(0.05)
            assert [_requests_total(url) for _ in range(6)] == [float(total)] * 6
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=20) == 0
            out = process.stdout.read() if process.stdout else ""
            assert "Workers: 2" in out
            assert "shutting down (SIGTERM)" in out
    audit = tmp_path / ".haechi" / "audit.jsonl"
    verified = json_output(run_haechi("audit-verify", "--audit", str(audit), cwd=tmp_path))
    assert verified["result"]["valid"] is True
    assert verified["result"]["records"] == total
    assert _EMAIL not in audit.read_text()


def _served_connections(pid: int, port: int) -> int:
    """How many established TCP connections to local ``port`` process ``pid`` holds."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "01" and int(local.rsplit(":", 1)[1], 16) == port:  # ESTABLISHED
                inodes.add(inode)
    held = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except FileNotFoundError:
            continue
        if target.startswith("socket:[") and target[8:-1] in inodes:
            held += 1
    return held


def test_connections_are_dealt_to_the_workers_in_turn(tmp_path: Path) -> None:
    # Letting the kernel pick a worker per connection splits a pool of keep-alive
    # connections unevenly (an even split of 20 comes out about one time in six).
    upstream = UpstreamServer()
    with serve_in_thread(upstream) as up:
        config = _write_config(tmp_path, up.url)
        with _proxy_process(config, "--workers", "2") as (process, url, _lines):
            port = int(url.rsplit(":", 1)[1])
            clients = [httpx.Client(limits=httpx.Limits(max_connections=1)) for _ in range(20)]
            try:
                for client in clients:
                    response = client.post(
                        f"{url}/v1/chat/completions",
                        json={"model": "m", "messages": [{"role": "user", "content": _EMAIL}]},
                        timeout=10,
                    )
                    assert response.status_code == 200
                held = sorted(_served_connections(pid, port) for pid in _workers(process.pid))
                assert held == [10, 10]
                # The supervisor keeps none of them open.
                assert _served_connections(process.pid, port) == 0
            finally:
                for client in clients:
                    client.close()
            assert all(_EMAIL not in received.text for received in upstream.received)
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=20) == 0


def test_workers_serve_tls_on_the_connections_handed_to_them(tmp_path: Path) -> None:
    key_file, cert_file, _pfx = _certificate(tmp_path)
    tls = {"keyFile": str(key_file), "certFile": str(cert_file)}
    upstream = UpstreamServer()
    with serve_in_thread(upstream) as up:
        config = _write_config(tmp_path, up.url, {"proxy": {"tls": tls}})
        with _proxy_process(config, "--workers", "2") as (process, url, _lines):
            assert url.startswith("https://127.0.0.1:")
            # A client that does not speak TLS fails its own handshake only.
            with pytest.raises(httpx.HTTPError):
                httpx.get(url.replace("https://", "http://") + "/__haechi/live", timeout=5)
            trust = ssl.create_default_context(cafile=str(cert_file))
            for _ in range(4):  # both workers, in turn
                with httpx.Client(verify=trust) as client:
                    response = client.post(
                        f"{url}/v1/chat/completions",
                        json={"model": "m", "messages": [{"role": "user", "content": _EMAIL}]},
                        timeout=10,
                    )
                assert response.status_code == 200
            assert len(upstream.received) == 4
            assert all(_EMAIL not in received.text for received in upstream.received)
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=20) == 0


def test_a_dead_worker_is_replaced(tmp_path: Path) -> None:
    upstream = UpstreamServer()
    with serve_in_thread(upstream) as up:
        config = _write_config(tmp_path, up.url)
        with _proxy_process(config, "--workers", "2") as (process, url, _lines):
            first = _workers(process.pid)
            subprocess.run(["kill", "-9", str(first[0])], check=True)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                current = _workers(process.pid)
                if len(current) == 2 and first[0] not in current:
                    break
                time.sleep(0.05)
            assert len(current) == 2
            assert first[0] not in current
            for _ in range(6):
                with httpx.Client() as client:
                    assert client.get(f"{url}/__haechi/live", timeout=10).status_code == 200
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=20) == 0
            err = process.stderr.read() if process.stderr else ""
            assert f"worker {first[0]} exited (code -9)" in err


def test_workers_exit_when_the_supervisor_is_killed(tmp_path: Path) -> None:
    # No connection can reach a worker without its supervisor: it drains and exits.
    upstream = UpstreamServer()
    with serve_in_thread(upstream) as up:
        config = _write_config(tmp_path, up.url)
        with _proxy_process(config, "--workers", "2") as (process, url, _lines):
            workers = _workers(process.pid)
            with httpx.Client() as client:  # an idle keep-alive connection to one of them
                assert client.get(f"{url}/__haechi/live", timeout=10).status_code == 200
                process.kill()
                process.wait(timeout=10)
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline and any(_alive(pid) for pid in workers):
                    time.sleep(0.05)
            assert not any(_alive(pid) for pid in workers)


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie left for its dead parent's reaper does not)."""
    try:
        status = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return status != "Z"


def test_workers_that_keep_dying_stop_the_gateway(tmp_path: Path) -> None:
    upstream = UpstreamServer()
    with serve_in_thread(upstream) as up:
        config = _write_config(tmp_path, up.url)
        with _proxy_process(config, "--workers", "2") as (process, _url, _lines):
            killed: set[int] = set()
            deadline = time.monotonic() + 60
            while process.poll() is None and time.monotonic() < deadline:
                for pid in _workers(process.pid):
                    if pid not in killed:
                        killed.add(pid)
                        subprocess.run(["kill", "-9", str(pid)], check=False)
                time.sleep(0.02)
            assert process.wait(timeout=20) == 1
            err = process.stderr.read() if process.stderr else ""
            assert "haechi: proxy workers keep exiting; the gateway stops" in err
            assert len(killed) >= 5  # more than 2 x workers exits within the minute


def test_workers_must_be_at_least_one(tmp_path: Path) -> None:
    config = _write_config(tmp_path, "http://127.0.0.1:9", {"proxy": {"workers": 0}})
    result = subprocess.run(
        [*HAECHI, "proxy", "--config", str(config), "--port", "0"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert "proxy.workers" in result.stderr
