# SPDX-License-Identifier: Apache-2.0
"""The ``haechi_runtime`` fixture of the public pytest plugin."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from haechi.runtime import Runtime


def test_runtime_files_live_in_the_test_directory(
    haechi_runtime: Callable[..., Runtime], tmp_path: Path
) -> None:
    runtime = haechi_runtime({"policy": {"mode": "enforce"}})
    result = runtime.protect_sync({"note": "call minji.kim@example.com"})
    assert result.payload == {"note": "call [REDACTED:email]"}
    audit = tmp_path / "haechi" / "audit.jsonl"
    assert audit.exists()
    assert b"minji.kim@example.com" not in audit.read_bytes()
    assert not Path("haechi.config.json").exists() or Path.cwd() != tmp_path
