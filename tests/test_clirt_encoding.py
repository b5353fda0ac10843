# SPDX-License-Identifier: Apache-2.0
"""JSON output is UTF-8 whatever the encoding of the locale: real ``haechi`` subprocesses.

Under an ASCII or Latin-1 locale, printing Korean text (or an emoji) used to fail as an
internal error, after ``protect`` had audited the call.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

TEXT = "안녕하세요 😀"


def _run(encoding: str, *args: str, stdin: bytes, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("HAECHI_")}
    env["PYTHONIOENCODING"] = encoding
    return subprocess.run(
        [sys.executable, "-m", "haechi", *args],
        cwd=cwd,
        env=env,
        input=stdin,
        capture_output=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("encoding", ["ascii", "latin-1"])
def test_protect_prints_utf8_json(tmp_path: Path, encoding: str) -> None:
    document = {"note": TEXT}
    result = _run(encoding, "protect", stdin=json.dumps(document).encode(), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.decode("utf-8"))["payload"] == document


@pytest.mark.parametrize("encoding", ["ascii", "latin-1"])
def test_scan_prints_utf8_json_lines(tmp_path: Path, encoding: str) -> None:
    line = json.dumps({TEXT: "jane.doe@example.com"}, ensure_ascii=False) + "\n"
    result = _run(encoding, "scan", stdin=line.encode("utf-8"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    finding = json.loads(result.stdout.decode("utf-8"))["findings"][0]
    assert finding["path"] == [TEXT]


def test_rules_json_prints_under_an_ascii_locale(tmp_path: Path) -> None:
    result = _run("ascii", "rules", "--json", stdin=b"", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.decode("utf-8"))["count"] > 0


def test_a_lone_surrogate_read_from_a_file_is_printed_as_its_escape(tmp_path: Path) -> None:
    # A key id written as the JSON escape "\ud800" reads as a string UTF-8 cannot hold:
    # status failed as an internal error.
    assert _run("utf-8", "init", stdin=b"", cwd=tmp_path).returncode == 0
    key_file = tmp_path / ".haechi" / "dev.keys.json"
    keys = json.loads(key_file.read_text())
    keys["keys"][0]["kid"] = "\ud800"
    key_file.write_text(json.dumps(keys))
    result = _run("utf-8", "status", stdin=b"", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout.decode("utf-8"))
    assert status["keys"]["nonceBudget"]["kid"] == "\ud800"
