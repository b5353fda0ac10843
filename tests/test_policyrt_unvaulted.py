# SPDX-License-Identifier: Apache-2.0
"""Without a token vault, ``tokenize`` writes a label whose value no one can confirm from a
guess: a phone number has few enough possible values to hash them all, so a plain hash of one
would give the value back to whoever receives the label.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
from pathlib import Path

from haechi.crypto import init_key_file
from haechi.runtime import create_runtime

PHONE = "010-1234-5678"
LABEL = re.compile(r"call \[TOKEN:phone:([0-9a-f]{12})\] today")
PROTECT = f"""
from haechi.runtime import create_runtime
runtime = create_runtime(
    {{"policy": {{"mode": "enforce", "actions": {{"phone": "tokenize"}}}}}}, {{"token_vault": None}}
)
print(runtime.protect_sync({{"text": "call {PHONE} today"}}).payload["text"])
runtime.close()
"""


def _label(text: str) -> str:
    match = LABEL.fullmatch(text)
    assert match is not None, text
    return match.group(1)


def _protected(workdir: Path) -> str:
    """The text ``call <PHONE> today`` as a runtime without a vault writes it."""
    keys = workdir / "dev.keys.json"
    if not keys.exists():
        init_key_file(keys)
    config = {
        "policy": {"mode": "enforce", "actions": {"phone": "tokenize"}},
        "keys": {"keyFile": str(keys)},
        "audit": {"path": str(workdir / "audit.jsonl")},
    }
    runtime = create_runtime(config, {"token_vault": None})
    try:
        text: str = runtime.protect_sync({"text": f"call {PHONE} today"}).payload["text"]
    finally:
        runtime.close()
    return text


def test_a_label_cannot_be_confirmed_from_a_guess_of_the_value(tmp_path: Path) -> None:
    label = _label(_protected(tmp_path))
    assert label != hashlib.sha256(PHONE.encode("utf-8")).hexdigest()[:12]
    # Equal values stay linkable within the process.
    assert _label(_protected(tmp_path)) == label


def test_another_process_labels_the_same_value_differently(tmp_path: Path) -> None:
    label = _label(_protected(tmp_path))
    done = subprocess.run(
        [sys.executable, "-c", PROTECT],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert _label(done.stdout.strip()) != label
