# SPDX-License-Identifier: Apache-2.0
"""``haechi init`` makes and rotates the key file only for ``keys.provider: "local"``, the one
provider that reads ``keys.keyFile``: for another, a key file is key material nothing uses, and
a rotation of it would report keys rotated that were not."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli import json_output, run_haechi


def _external_keys(directory: Path) -> Path:
    (directory / "haechi.config.json").write_text(json.dumps({"keys": {"provider": "external"}}))
    return directory / ".haechi" / "dev.keys.json"


def test_no_key_file_is_made_for_another_provider(tmp_path: Path) -> None:
    key_file = _external_keys(tmp_path)
    result = json_output(run_haechi("init", cwd=tmp_path))
    assert not key_file.exists()
    assert (result["keyFile"], result["keyCreated"], result["activeKid"]) == (None, False, None)
    assert not any("development key store" in text for text in result["warnings"])
    assert (tmp_path / ".haechi").is_dir()  # the audit directory


def test_rotating_the_keys_of_another_provider_is_refused(tmp_path: Path) -> None:
    key_file = _external_keys(tmp_path)
    result = run_haechi("init", "--force", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith("haechi: init --force rotates the key file of keys.provider")
    assert not key_file.exists()
