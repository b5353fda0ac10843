# SPDX-License-Identifier: Apache-2.0
"""``haechi rules``: the catalogue as a table or one JSON document, run as a real process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from haechi.detect import default_rules


def _haechi(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "haechi", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_rules_json_lists_the_whole_catalogue(tmp_path: Path) -> None:
    result = _haechi("rules", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["ok"] is True
    assert document["command"] == "rules"
    assert [rule["id"] for rule in document["rules"]] == [rule.id for rule in default_rules()]
    assert document["count"] == len(document["rules"])
    card = next(rule for rule in document["rules"] if rule["id"] == "card-like")
    assert card == {
        "id": "card-like",
        "type": "card",
        "confidence": 0.75,
        "hardBlock": True,
        "validator": "luhn+iin",
        "direction": "both",
        "source": "builtin",
        "summary": card["summary"],
    }
    injection = [rule for rule in document["rules"] if rule["type"] == "injection"]
    assert {rule["direction"] for rule in injection} == {"response"}
    assert "ip_address" in document["types"]


def test_rules_table_and_custom_rules_from_config(tmp_path: Path) -> None:
    config = tmp_path / "haechi.config.json"
    config.write_text(
        json.dumps(
            {
                "configVersion": 1,
                "filters": {
                    "customRules": [{"id": "emp", "type": "employee_id", "pattern": r"EMP-\d{6}"}]
                },
            }
        )
    )
    table = _haechi("rules", cwd=tmp_path)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split()[:3] == ["id", "type", "conf"]
    assert any(line.startswith("emp ") for line in lines)
    assert lines[-1].endswith("types")


def test_invalid_custom_rule_is_one_clear_error_line(tmp_path: Path) -> None:
    config = tmp_path / "bad.json"
    config.write_text(
        json.dumps(
            {
                "configVersion": 1,
                "filters": {"customRules": [{"id": "x", "type": "t", "pattern": "(a+)+"}]},
            }
        )
    )
    result = _haechi("rules", "--config", str(config), cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith(f"haechi: {config}: filters.customRules[0].pattern: ")
    assert "nested quantifiers" in result.stderr
    assert len(result.stderr.splitlines()) == 1


@pytest.mark.parametrize(
    ("pattern", "problem"),
    [("(a+)+", "nested quantifiers"), ("(", "does not compile"), (r"(a)\1", "backreference")],
)
def test_status_refuses_a_bad_custom_rule_when_the_config_loads(
    tmp_path: Path, pattern: str, problem: str
) -> None:
    config = tmp_path / "haechi.config.json"
    rules = [
        {"id": "ok", "type": "ticket", "pattern": r"TCK-\d{6}"},
        {"id": "bad", "type": "ticket", "pattern": pattern},
    ]
    config.write_text(json.dumps({"configVersion": 1, "filters": {"customRules": rules}}))
    result = _haechi("status", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout == ""
    assert "filters.customRules[1].pattern: " in result.stderr
    assert problem in result.stderr
