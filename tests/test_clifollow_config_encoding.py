# SPDX-License-Identifier: Apache-2.0
"""A configuration file is UTF-8: a byte order mark in front is skipped, a file in UTF-16 or
UTF-32 is refused with a message naming the file and its encoding.

A file saved with a byte order mark was refused as ``invalid JSON at line 1 column 1``, and
one in UTF-16 as ``cannot read u16.json: UnicodeDecodeError``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from haechi.config import load_config
from haechi.errors import ConfigError
from tests.cli import run_haechi

DOCUMENT = json.dumps({"configVersion": 1, "mode": "enforce"})


def test_a_byte_order_mark_in_front_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "bom.json"
    path.write_bytes(DOCUMENT.encode("utf-8-sig"))
    assert load_config(path, env={}).effective_mode == "enforce"


@pytest.mark.parametrize(
    ("codec", "named"),
    [
        ("utf-16", "UTF-16"),  # with its byte order mark
        ("utf-16-be", "UTF-16"),  # without one
        ("utf-32", "UTF-32"),
    ],
)
def test_a_file_in_utf16_or_utf32_is_refused_naming_its_encoding(
    tmp_path: Path, codec: str, named: str
) -> None:
    path = tmp_path / "wide.json"
    path.write_bytes(DOCUMENT.encode(codec))
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    assert str(caught.value) == f"cannot read {path}: the file is {named} text; save it as UTF-8"


def test_bytes_that_are_not_utf8_are_refused_saying_where(tmp_path: Path) -> None:
    path = tmp_path / "latin1.json"
    path.write_bytes(b'{"configVersion": 1, "mode": "caf\xe9"}')
    with pytest.raises(ConfigError, match=r"latin1\.json: not UTF-8 text \(byte 34 is invalid\)"):
        load_config(path, env={})


def test_status_refuses_a_utf16_file_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "u16.json").write_bytes(DOCUMENT.encode("utf-16"))
    result = run_haechi("status", "--config", "u16.json", cwd=tmp_path)
    assert result.returncode == 1
    assert (
        result.stderr == "haechi: cannot read u16.json: the file is UTF-16 text; save it as UTF-8\n"
    )
    assert result.stdout == ""
