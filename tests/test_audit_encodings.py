# SPDX-License-Identifier: Apache-2.0
"""A log is UTF-8: a record re-encoded otherwise keeps its hash, so it must not verify."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest

from haechi.audit import (
    AuditSink,
    FileAuditStore,
    build_integrity_record,
    read_summary,
    verify_chain,
)
from haechi.errors import AuditError
from tests.cli import run_haechi


def _anchored_log(directory: Path) -> tuple[Path, Path, list[bytes]]:
    """Three records with one anchor each; the second is a blocked decision."""
    log, anchor = directory / "audit.jsonl", directory / "anchor.jsonl"

    async def run() -> None:
        sink = AuditSink(FileAuditStore(log), anchor_mode="file", anchor_path=anchor)
        for n in range(3):
            await sink.record({"n": n, "blocked": n == 1, "decision": "auth_denied"})

    anyio.run(run)
    return log, anchor, log.read_bytes().splitlines(keepends=True)


def _utf16(line: bytes) -> bytes:
    return line.decode().encode("utf-16-be")  # ends with 00 0A: still one line


def _utf32(line: bytes) -> bytes:
    return line.decode().encode("utf-32-be")


def _bom(line: bytes) -> bytes:
    return b"\xef\xbb\xbf" + line


@pytest.mark.parametrize("encode", [_utf16, _utf32, _bom], ids=["utf-16", "utf-32", "bom"])
def test_a_record_re_encoded_from_utf8_is_not_a_record(
    tmp_path: Path, encode: Callable[[bytes], bytes]
) -> None:
    log, anchor, lines = _anchored_log(tmp_path)
    log.write_bytes(lines[0] + encode(lines[1]) + lines[2])
    with pytest.raises(AuditError, match="line 2 is not a JSON object"):
        verify_chain(log, anchor_path=anchor)
    result = run_haechi("audit-verify", "--audit", log, "--anchor", anchor, cwd=tmp_path)
    assert result.returncode == 1, result.stdout
    assert "line 2 is not a JSON object" in result.stderr
    with pytest.raises(AuditError, match="line 2"):
        read_summary(log)


def test_surrogates_encoded_as_bytes_are_not_utf8(tmp_path: Path) -> None:
    # A record holding a lone surrogate, hashed as json-stable-v1 escapes it, and written
    # with the surrogate as the three bytes ED A0 80 (not UTF-8).
    record = build_integrity_record(None, {"reason": "\ud800"})
    text = json.dumps(record, ensure_ascii=False, separators=(",", ":"))
    log = tmp_path / "audit.jsonl"
    log.write_bytes(text.encode("utf-8", "surrogatepass") + b"\n")
    with pytest.raises(AuditError, match="line 1 is not a JSON object"):
        verify_chain(log)


def test_a_store_does_not_chain_onto_a_last_record_that_is_not_utf8(tmp_path: Path) -> None:
    log, _anchor, lines = _anchored_log(tmp_path)
    log.write_bytes(lines[0] + lines[1] + _utf16(lines[2]))
    store = FileAuditStore(log)

    async def run() -> None:
        assert (await store.ready()).reason == "audit_file_unreadable"
        with pytest.raises(AuditError, match="not a JSON object"):
            await AuditSink(store).record({"n": 3})

    anyio.run(run)
    assert log.read_bytes().endswith(_utf16(lines[2]))


def test_lines_ended_with_crlf_still_verify(tmp_path: Path) -> None:
    log, anchor, lines = _anchored_log(tmp_path)
    log.write_bytes(b"".join(line[:-1] + b"\r\n" for line in lines))
    result = verify_chain(log, anchor_path=anchor)
    assert (result.valid, result.records) == (True, 3)
