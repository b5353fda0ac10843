# SPDX-License-Identifier: Apache-2.0
"""``haechi scan`` never prints a value it found, even one written as an object key.

A finding's ``path`` lists the keys down to it; when a key is itself the value found
(``{"jane.doe@example.com": ...}``), printing the path would print the value. Real
``haechi`` subprocesses.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli import run_haechi

EMAIL = "jane.doe@example.com"
CARD = "4111111111111111"
API_KEY = "sk_live_4eC39HqLyjWDarjtT1zdp7dc"
PHONE = "010-1234-5678"


def _scan(tmp_path: Path, document: object) -> list[dict[str, object]]:
    result = run_haechi("scan", stdin=json.dumps(document) + "\n", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for value in (EMAIL, CARD, API_KEY):
        assert value not in result.stdout + result.stderr
    findings: list[dict[str, object]] = json.loads(result.stdout)["findings"]
    return findings


def test_a_key_found_to_be_a_value_is_not_printed(tmp_path: Path) -> None:
    findings = _scan(tmp_path, {EMAIL: "x", "list": [{API_KEY: 1}]})
    paths = {finding["type"]: finding["path"] for finding in findings}
    assert paths["email"] == ["[REDACTED:email]"]
    assert paths["api_key"] == ["list", 0, "[REDACTED:api_key]"]


def test_paths_through_such_a_key_hide_it_too(tmp_path: Path) -> None:
    findings = _scan(tmp_path, {"user": {CARD: {"note": f"call {PHONE}"}}, "to": EMAIL})
    paths = {finding["type"]: finding["path"] for finding in findings}
    assert paths["card"] == ["user", "[REDACTED:card]"]
    assert paths["phone"] == ["user", "[REDACTED:card]", "note"]
    assert paths["email"] == ["to"]  # a plain key is printed as it is
