# SPDX-License-Identifier: Apache-2.0
"""``haechi status``, ``audit-verify`` and ``report`` name the configured audit log they
cannot read: they gave only the file's last component (``audit.jsonl``), which does not say
which log of which configuration is meant."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli import json_output, run_haechi


def test_status_names_the_configured_audit_path_it_cannot_read(tmp_path: Path) -> None:
    (tmp_path / "ad" / "audit.jsonl").mkdir(parents=True)
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"configVersion": 1, "audit": {"path": "ad/audit.jsonl"}}))
    status = json_output(run_haechi("status", "--config", config, cwd=tmp_path))
    assert status["audit"]["chain"] is None
    unverified = [text for text in status["warnings"] if "cannot be verified" in text]
    assert len(unverified) == 1
    assert unverified[0] == (
        "audit log cannot be verified: cannot read audit log ad/audit.jsonl: Is a directory"
    )


def test_audit_readers_name_the_configured_audit_path_they_cannot_read(tmp_path: Path) -> None:
    (tmp_path / "ad" / "audit.jsonl").mkdir(parents=True)
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"configVersion": 1, "audit": {"path": "ad/audit.jsonl"}}))
    verify = run_haechi("audit-verify", "--config", config, cwd=tmp_path)
    assert verify.returncode == 1
    assert verify.stderr == "haechi: cannot read audit log ad/audit.jsonl: Is a directory\n"
    report = run_haechi("report", "--audit", "ad/audit.jsonl", cwd=tmp_path)
    assert report.returncode == 1
    assert report.stderr == "haechi: cannot read audit log ad/audit.jsonl: Is a directory\n"
