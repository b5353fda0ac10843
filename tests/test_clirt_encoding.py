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
