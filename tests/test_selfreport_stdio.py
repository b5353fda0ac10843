# SPDX-License-Identifier: Apache-2.0
"""``haechi proxy`` started with a standard descriptor closed (``<&-``, as some service
scripts start daemons) serves and stops as any other.

The kernel gives a process the lowest free descriptor, so the gateway's listening socket
became descriptor 0 (and its event loop's poller 1): the event loop refuses to close a
descriptor up to 2 and aborted the process (SIGABRT) as it stopped, before it drained.
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

from haechi.crypto import init_key_file
from haechi.proxy.background import serve_in_thread
from tests.upstream_server import UpstreamServer, gateway_config


@pytest.mark.parametrize("closed", ["0<&- 1>&-", "0<&- 2>&-"])
def test_the_gateway_serves_and_stops_with_standard_descriptors_closed(
    tmp_path: Path, closed: str
) -> None:
    upstream = UpstreamServer()
    with serve_in_thread(upstream) as served:
        settings = gateway_config(tmp_path, served.url, {"logging": {"format": "json"}})
        init_key_file(settings["keys"]["keyFile"])
        config = tmp_path / "haechi.config.json"
        config.write_text(json.dumps(settings))
        command = [sys.executable, "-m", "haechi", "proxy", "--config", str(config), "--port", "0"]
        process = subprocess.Popen(
            ["sh", "-c", f'exec "$@" {closed}', "sh", *command],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=tmp_path,
            env={k: v for k, v in os.environ.items() if not k.startswith("HAECHI_")},
        )
        try:
            # Without a stdout the startup line is written on stderr.
            lines = process.stderr if "1>&-" in closed else process.stdout
            assert lines is not None
            listening = next(json.loads(line) for line in lines if '"proxy_listening"' in line)
            url = f"http://127.0.0.1:{listening['port']}"
            answer = httpx.post(
                f"{url}/v1/chat/completions",
                json={"model": "m", "messages": [{"role": "user", "content": "hello"}]},
                timeout=30,
            )
            assert answer.status_code == 200
            process.send_signal(signal.SIGTERM)
            _out, err = process.communicate(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)
    assert process.returncode == 0, err
    assert "Assertion" not in err


def _standard_descriptors(pid: int) -> list[str]:
    return [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in (0, 1, 2)]


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
def test_workers_get_the_null_device_as_their_closed_descriptors(tmp_path: Path) -> None:
    """Workers inherit the supervisor's standard descriptors: a closed one would be the
    first file a worker opens (its metrics file), written to by whatever it prints."""
    settings = gateway_config(tmp_path, "http://127.0.0.1:9", {"logging": {"format": "json"}})
    init_key_file(settings["keys"]["keyFile"])
    config = tmp_path / "haechi.config.json"
    config.write_text(json.dumps(settings))
    command = [sys.executable, "-m", "haechi", "proxy", "--config", str(config), "--port", "0"]
    process = subprocess.Popen(
        ["sh", "-c", 'exec "$@" 0<&- 1>&-', "sh", *command, "--workers", "2"],
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if not k.startswith("HAECHI_")},
    )
    try:
        assert process.stderr is not None
        assert any('"proxy_listening"' in line for line in process.stderr)
        children = subprocess.run(
            ["pgrep", "-P", str(process.pid)], capture_output=True, text=True, check=False
        ).stdout.split()
        assert children
        for pid in [process.pid, *map(int, children)]:
            assert _standard_descriptors(pid)[:2] == [os.devnull, os.devnull]
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
    assert process.returncode == 0
