# SPDX-License-Identifier: Apache-2.0
"""Times in milliseconds and per-second denial budgets have an upper bound: a number past what
the gateway's clocks hold is refused as configuration, naming its key, instead of being
accepted and then failing when the gateway starts (or silently stopping the thread that
fsyncs the audit file)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from haechi.config import MAX_MILLISECONDS, config_reference, parse_config
from haechi.crypto import init_key_file
from haechi.errors import ConfigError
from tests.cli import run_haechi
from tests.upstream_server import UpstreamServer, gateway_config, serve_in_thread

#: Every time in milliseconds of the configuration, by its key.
TIME_KEYS = sorted(key.key for key in config_reference() if key.key.endswith("Ms"))
BUDGET_KEYS = ["auth.deniedRecordsPerSecond", "rateLimit.deniedRecordsPerSecond"]
#: The ceiling of each key that is lower than the shared one (a rate limit's window).
OWN_CEILING = {"rateLimit.timeoutMs": 60_000}


#: What a document needs beside a key of the auth plugin's section.
_PLUGIN = {
    "provider": "plugin",
    "plugin": {"manifestPath": "m.json", "trustAnchors": [{"keyId": "k", "publicKey": "p"}]},
}


def _document(key: str, value: int) -> dict[str, Any]:
    *sections, name = key.split(".")
    document: dict[str, Any] = (
        {"auth": json.loads(json.dumps(_PLUGIN))}
        if sections[:2]
        == [
            "auth",
            "plugin",
        ]
        else {}
    )
    node = document
    for section in sections:
        node = node.setdefault(section, {})
    node[name] = value
    return document


def test_the_time_keys_are_the_ones_the_gateway_reads() -> None:
    assert {
        "limits.upstreamTimeoutMs",
        "limits.requestTimeoutMs",
        "limits.headersTimeoutMs",
        "limits.writeTimeoutMs",
        "limits.shutdownGraceMs",
        "limits.maxInspectionMs",
        "audit.fsyncIntervalMs",
        "auth.plugin.timeoutMs",
        "rateLimit.timeoutMs",
    } <= set(TIME_KEYS)


@pytest.mark.parametrize("key", TIME_KEYS + BUDGET_KEYS)
@pytest.mark.parametrize("excess", [1, 10**400], ids=["one-past", "huge"])
def test_a_number_past_the_ceiling_is_refused_naming_its_key(key: str, excess: int) -> None:
    ceiling = OWN_CEILING.get(key, MAX_MILLISECONDS if key in TIME_KEYS else 1_000_000)
    with pytest.raises(ConfigError) as info:
        parse_config(_document(key, ceiling + excess))
    assert key in str(info.value)
    assert str(ceiling) in str(info.value)


@pytest.mark.parametrize("key", TIME_KEYS)
def test_the_ceiling_itself_is_accepted(key: str) -> None:
    parse_config(_document(key, OWN_CEILING.get(key, MAX_MILLISECONDS)))


def test_the_command_line_names_the_key_of_a_huge_timeout(tmp_path: Path) -> None:
    config = tmp_path / "haechi.config.json"
    config.write_text('{"limits": {"upstreamTimeoutMs": 1' + "0" * 400 + "}}")
    result = run_haechi("proxy", "--config", config, "--port", "0", cwd=tmp_path, timeout=60)
    assert result.returncode == 1
    assert "limits.upstreamTimeoutMs" in result.stderr
    assert "internal error" not in result.stderr


def test_a_gateway_with_every_time_at_its_ceiling_starts_and_serves(tmp_path: Path) -> None:
    settings: dict[str, Any] = {}
    for key in (key for key in TIME_KEYS if not key.startswith("auth.plugin.")):
        for section, values in _document(key, OWN_CEILING.get(key, MAX_MILLISECONDS)).items():
            settings.setdefault(section, {}).update(values)
    with serve_in_thread(UpstreamServer()) as upstream:
        config = gateway_config(tmp_path, upstream.url, settings)
        init_key_file(config["keys"]["keyFile"])
        path = tmp_path / "haechi.config.json"
        path.write_text(json.dumps(config))
        argv = [sys.executable, "-m", "haechi", "proxy", "--config", str(path), "--port", "0"]
        proxy = subprocess.Popen(argv, cwd=tmp_path, stdout=subprocess.PIPE, text=True)
        try:
            assert proxy.stdout is not None
            line = proxy.stdout.readline()
            while "listening on" not in line:
                assert line, "the gateway stopped before it listened"
                line = proxy.stdout.readline()
            url = line.rsplit(" ", 1)[1].strip()
            answer = httpx.post(
                f"{url}/v1/chat/completions",
                json={"model": "m", "messages": [{"role": "user", "content": "a@example.com"}]},
                timeout=30,
            )
            assert answer.status_code == 200
            assert "a@example.com" not in upstream_text(upstream.url)
        finally:
            proxy.terminate()
            proxy.wait(timeout=30)
    assert proxy.returncode == 0
    records = Path(config["audit"]["path"]).read_text().splitlines()
    assert [json.loads(record)["operation"] for record in records] == [
        "request:POST chat-completions"
    ]


def upstream_text(url: str) -> str:
    """Every request the test upstream received, as text."""
    return httpx.get(f"{url}/__upstream/received", timeout=10).text
