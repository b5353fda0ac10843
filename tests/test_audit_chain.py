# SPDX-License-Identifier: Apache-2.0
"""The hash chain on real files: tampering, truncation, anchors, and the CLI verdicts."""

from __future__ import annotations

import json
import re
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

from haechi.audit import (
    AuditSink,
    FileAuditStore,
    MemoryAuditStore,
    build_integrity_record,
    verify_chain,
    verify_records,
    verify_store,
)
from haechi.cli import main
from haechi.errors import AuditError, ConfigError
from tests.cli import run_haechi

Lines = list[dict[str, Any]]


def _write(path: Path, count: int, **sink_options: Any) -> Lines:
    async def run() -> Lines:
        sink = AuditSink(FileAuditStore(path), **sink_options)
        return [await sink.record({"n": n, "blocked": False}) for n in range(1, count + 1)]

    return anyio.run(run)


def _load(path: Path) -> Lines:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _save(path: Path, records: Lines) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")


def _edit_stale(records: Lines) -> Lines:
    records[2]["n"] = 99
    return records


def _edit_recomputed(records: Lines) -> Lines:
    event = {k: v for k, v in records[2].items() if k != "auditIntegrity"}
    records[2] = build_integrity_record(records[1]["auditIntegrity"], {**event, "n": 99})
    return records


def _delete_middle(records: Lines) -> Lines:
    del records[2]
    return records


def _reorder(records: Lines) -> Lines:
    records[1], records[2] = records[2], records[1]
    return records


def _renumber(records: Lines) -> Lines:
    records[2]["auditIntegrity"]["sequence"] = 30
    return records


def _drop_integrity(records: Lines) -> Lines:
    del records[3]["auditIntegrity"]
    return records


def _drop_previous_hash(records: Lines) -> Lines:
    del records[1]["auditIntegrity"]["previousHash"]
    return records


def _swap_alg(records: Lines) -> Lines:
    records[0]["auditIntegrity"]["alg"] = "md5"
    return records


TAMPERING: list[tuple[Callable[[Lines], Lines], str, int]] = [
    (_edit_stale, "event hash mismatch", 3),
    (_edit_recomputed, "previous hash mismatch", 4),
    (_delete_middle, "sequence mismatch", 3),
    (_reorder, "sequence mismatch", 2),
    (_renumber, "sequence mismatch", 3),
    (_drop_integrity, "missing auditIntegrity", 4),
    (_drop_previous_hash, "previous hash mismatch", 2),
    (_swap_alg, "event hash mismatch", 1),
]


@pytest.mark.parametrize(("tamper", "reason", "records"), TAMPERING)
def test_tampering_is_detected_with_its_reason(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    tamper: Callable[[Lines], Lines],
    reason: str,
    records: int,
) -> None:
    audit = tmp_path / "audit.jsonl"
    _write(audit, 5)
    assert verify_chain(audit).valid
    _save(audit, tamper(_load(audit)))

    result = verify_chain(audit)
    assert result.to_json() == {"valid": False, "records": records, "reason": reason}

    assert main(["audit-verify", "--audit", str(audit)]) == 4
    printed = json.loads(capsys.readouterr().out)
    assert printed == {
        "ok": False,
        "command": "audit-verify",
        "auditPath": str(audit),
        "anchorPath": None,
        "result": {"valid": False, "records": records, "reason": reason},
    }


def test_tail_truncation_is_caught_by_the_anchor(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    audit, anchor = tmp_path / "audit.jsonl", tmp_path / "anchor.jsonl"
    _write(audit, 5, anchor_mode="file", anchor_path=anchor)
    _save(audit, _load(audit)[:3])

    # Without the anchor, a shortened chain is still a valid chain (a known limit).
    assert verify_chain(audit).valid
    reason = "tail truncation: chain has 3 records but anchor attests sequence 4"
    assert verify_chain(audit, anchor_path=anchor).reason == reason

    assert main(["audit-verify", "--audit", str(audit), "--anchor", str(anchor)]) == 4
    printed = json.loads(capsys.readouterr().out)
    assert printed["ok"] is False
    assert printed["anchorPath"] == str(anchor)
    assert printed["result"] == {"valid": False, "records": 3, "reason": reason}


def test_anchor_hash_mismatch_names_the_sequence(tmp_path: Path) -> None:
    audit, anchor = tmp_path / "audit.jsonl", tmp_path / "anchor.jsonl"
    _write(audit, 4, anchor_mode="file", anchor_path=anchor)
    anchors = _load(anchor)
    anchors[1]["eventHash"] = "A" * 43
    _save(anchor, anchors)
    result = verify_chain(audit, anchor_path=anchor)
    assert result.to_json() == {
        "valid": False,
        "records": 2,
        "reason": "anchor hash mismatch at sequence 2",
    }


def test_one_anchor_per_record_by_default(tmp_path: Path) -> None:
    audit, anchor = tmp_path / "audit.jsonl", tmp_path / "anchor.jsonl"
    records = _write(audit, 3, anchor_mode="file", anchor_path=anchor)
    anchors = _load(anchor)
    assert [a["sequence"] for a in anchors] == [1, 2, 3]
    assert [a["eventHash"] for a in anchors] == [r["auditIntegrity"]["eventHash"] for r in records]
    assert all(
        a["timestamp"].endswith("Z") and set(a) == {"sequence", "eventHash", "timestamp"}
        for a in anchors
    )
    assert stat.S_IMODE(anchor.stat().st_mode) == 0o600
    assert stat.S_IMODE(audit.stat().st_mode) == 0o600
    result = verify_chain(audit, anchor_path=anchor)
    assert result.to_json()["anchored"] == {"count": 3, "lastSequence": 3}


def test_every_records_two_anchors_at_two_and_four(tmp_path: Path) -> None:
    audit, anchor = tmp_path / "audit.jsonl", tmp_path / "anchor.jsonl"
    _write(audit, 5, anchor_mode="file", anchor_path=anchor, every_records=2)
    assert [a["sequence"] for a in _load(anchor)] == [2, 4]
    assert verify_chain(audit, anchor_path=anchor).valid


def test_partial_trailing_anchor_line_is_tolerated(tmp_path: Path) -> None:
    audit, anchor = tmp_path / "audit.jsonl", tmp_path / "anchor.jsonl"
    _write(audit, 2, anchor_mode="file", anchor_path=anchor)
    with anchor.open("a", encoding="utf-8") as handle:
        handle.write('{"sequence":3,"eventHa')
    result = verify_chain(audit, anchor_path=anchor)
    assert result.valid
    assert result.to_json()["anchored"] == {"count": 2, "lastSequence": 2}


def test_an_anchor_written_after_a_torn_one_is_read(tmp_path: Path) -> None:
    """A crash can tear the last anchor line; the next anchor goes on a line of its own
    instead of ending the torn one, where it was skipped with it."""
    audit, anchor = tmp_path / "audit.jsonl", tmp_path / "anchor.jsonl"
    _write(audit, 3, anchor_mode="file", anchor_path=anchor)
    anchor.write_bytes(anchor.read_bytes()[:-20])  # the anchor of record 3, torn
    _write(audit, 1, anchor_mode="file", anchor_path=anchor)
    assert verify_chain(audit, anchor_path=anchor).to_json()["anchored"] == {
        "count": 3,
        "lastSequence": 4,
    }
    lines = audit.read_text(encoding="utf-8").splitlines(keepends=True)
    audit.write_text("".join(lines[:3]), encoding="utf-8")
    reason = "tail truncation: chain has 3 records but anchor attests sequence 4"
    assert verify_chain(audit, anchor_path=anchor).reason == reason


def test_missing_anchor_file_counts_as_no_anchors(tmp_path: Path) -> None:
    audit = tmp_path / "audit.jsonl"
    _write(audit, 2)
    result = verify_chain(audit, anchor_path=tmp_path / "absent.jsonl")
    assert result.to_json() == {
        "valid": True,
        "records": 2,
        "headHash": _load(audit)[-1]["auditIntegrity"]["eventHash"],
        "anchored": {"count": 0, "lastSequence": None},
    }


def test_stdout_anchors_are_printed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    records = _write(tmp_path / "audit.jsonl", 2, anchor_mode="stdout")
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(a["sequence"], a["eventHash"]) for a in lines] == [
        (r["auditIntegrity"]["sequence"], r["auditIntegrity"]["eventHash"]) for r in records
    ]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"anchor_mode": "file"}, "audit.anchor.path"),
        ({"anchor_mode": "syslog"}, "audit.anchor.mode"),
        ({"every_records": 0}, "everyRecords"),
        ({"every_records": True}, "everyRecords"),
    ],
)
def test_sink_refuses_bad_anchor_settings(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        AuditSink(MemoryAuditStore(), **options)


def _give_twice(line: str, prefix: str) -> str:
    """``line`` (one JSON object) with ``prefix`` (``"key":value,``) written in front of its
    members: a reader keeping the first value of a key reads ``prefix``, one keeping the
    last (Python, jq) reads the line as it was hashed."""
    return "{" + prefix + line[1:]


@pytest.mark.parametrize(
    ("line", "prefix"),
    [
        (2, '"blocked":true,'),
        (3, '"auditIntegrity":{"sequence":3},'),
    ],
    ids=["top-level", "its integrity block"],
)
def test_a_record_giving_a_key_twice_breaks_the_chain(
    tmp_path: Path, line: int, prefix: str
) -> None:
    """Its hash vouches for one reading only: the chain is broken there (exit 4), whichever
    value the verifier itself would keep, and the line is named, never the key."""
    audit = tmp_path / "audit.jsonl"
    _write(audit, 4)
    lines = audit.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[line - 1] = _give_twice(lines[line - 1], prefix)
    audit.write_text("".join(lines), encoding="utf-8")
    broken = {"valid": False, "records": line, "reason": f"key given twice at line {line}"}
    assert verify_chain(audit).to_json() == broken
    assert anyio.run(verify_store, FileAuditStore(audit)).to_json() == broken

    verified = run_haechi("audit-verify", "--audit", audit, cwd=tmp_path)
    assert verified.returncode == 4, verified.stderr
    assert json.loads(verified.stdout)["result"] == broken
    report = run_haechi("report", "--audit", audit, cwd=tmp_path)
    assert report.returncode == 1, report.stdout
    assert report.stderr == f"haechi: audit.jsonl: line {line} gives a key twice in one object\n"


def test_a_store_does_not_chain_onto_a_last_record_giving_a_key_twice(tmp_path: Path) -> None:
    """Records chained onto it would bury the break under a chain that goes on."""
    audit = tmp_path / "audit.jsonl"
    _write(audit, 2)
    lines = audit.read_text(encoding="utf-8").splitlines(keepends=True)
    edited = "".join([lines[0], _give_twice(lines[1], '"blocked":true,')])
    audit.write_text(edited, encoding="utf-8")
    store = FileAuditStore(audit)

    async def run() -> None:
        assert (await store.ready()).reason == "audit_file_unreadable"
        with pytest.raises(AuditError, match="the last audit record gives a key twice"):
            await AuditSink(store).record({"n": 3})

    anyio.run(run)
    assert audit.read_text(encoding="utf-8") == edited


def test_an_anchor_line_giving_a_key_twice_breaks_the_chain(tmp_path: Path) -> None:
    """Skipped as unreadable, such a line would hide the truncation it attests (read with
    its first value, or its last, it attests a sequence past the end of the log)."""
    audit, anchor = tmp_path / "audit.jsonl", tmp_path / "anchor.jsonl"
    _write(audit, 3, anchor_mode="file", anchor_path=anchor)
    _save(audit, _load(audit)[:2])
    lines = anchor.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[2] = _give_twice(lines[2], '"sequence":2,')
    anchor.write_text("".join(lines), encoding="utf-8")
    broken = {"valid": False, "records": 2, "reason": "key given twice at anchor line 3"}
    assert verify_chain(audit, anchor_path=anchor).to_json() == broken

    verified = run_haechi("audit-verify", "--audit", audit, "--anchor", anchor, cwd=tmp_path)
    assert verified.returncode == 4, verified.stderr
    assert json.loads(verified.stdout)["result"] == broken


def test_blank_lines_are_skipped_and_a_malformed_line_raises(tmp_path: Path) -> None:
    audit = tmp_path / "audit.jsonl"
    _write(audit, 2)
    text = audit.read_text(encoding="utf-8")
    audit.write_text(text.replace("\n", "\n\n  \n", 1), encoding="utf-8")
    assert verify_chain(audit).records == 2
    audit.write_text(text + "{not json\n", encoding="utf-8")
    with pytest.raises(AuditError, match="line 3 is not a JSON object"):
        verify_chain(audit)
    audit.write_text(text + '{"n": NaN}\n', encoding="utf-8")
    with pytest.raises(AuditError, match="line 3"):
        verify_chain(audit)


def test_empty_chain_is_valid_with_no_head(tmp_path: Path) -> None:
    audit = tmp_path / "audit.jsonl"
    audit.write_text("", encoding="utf-8")
    assert verify_chain(audit).to_json() == {"valid": True, "records": 0, "headHash": None}
    assert verify_records([]).head_hash is None


def test_missing_audit_file_is_an_error_and_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(AuditError, match="not found"):
        verify_chain(tmp_path / "absent.jsonl")
    assert main(["audit-verify", "--audit", str(tmp_path / "absent.jsonl")]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("haechi: audit log not found")


def _config(tmp_path: Path, mode: str = "file") -> tuple[Path, Path, Path]:
    audit, anchor = tmp_path / "logs" / "audit.jsonl", tmp_path / "logs" / "anchor.jsonl"
    config = tmp_path / "haechi.config.json"
    config.write_text(
        json.dumps(
            {
                "configVersion": 1,
                "audit": {"path": str(audit), "anchor": {"mode": mode, "path": str(anchor)}},
            }
        ),
        encoding="utf-8",
    )
    return config, audit, anchor


def test_cli_reads_paths_from_the_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, audit, anchor = _config(tmp_path)
    _write(audit, 3, anchor_mode="file", anchor_path=anchor)
    _save(audit, _load(audit)[:2])

    # No --anchor: the configured anchor is not used, and the shortened chain passes.
    assert main(["audit-verify", "--config", str(config)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert (printed["auditPath"], printed["anchorPath"]) == (str(audit), None)

    # A bare --anchor takes the configured anchor file, before or after other options.
    for argv in (
        ["audit-verify", "--config", str(config), "--anchor"],
        ["audit-verify", "--anchor", "--config", str(config)],
        ["audit-verify", "--audit", str(audit), "--anchor", "--config", str(config)],
    ):
        assert main(argv) == 4
        printed = json.loads(capsys.readouterr().out)
        assert printed["anchorPath"] == str(anchor)
        assert printed["result"]["reason"].startswith("tail truncation")


def test_cli_bare_anchor_without_file_mode_checks_no_anchor(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, audit, _ = _config(tmp_path, mode="none")
    _write(audit, 2)
    assert main(["audit-verify", "--config", str(config), "--anchor"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["anchorPath"] is None
    assert printed["result"]["records"] == 2


def test_cli_rejects_a_stray_positional(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit-verify", "--audit", str(tmp_path / "a"), str(tmp_path / "b")]) == 1
    assert "did you mean --anchor PATH" in capsys.readouterr().err


def test_cli_end_to_end_in_a_subprocess(tmp_path: Path) -> None:
    audit, anchor = tmp_path / "audit.jsonl", tmp_path / "anchor.jsonl"
    _write(audit, 3, anchor_mode="file", anchor_path=anchor)
    command = [sys.executable, "-m", "haechi", "audit-verify", "--path", str(audit), "--anchor"]
    ok = subprocess.run([*command, str(anchor)], capture_output=True, text=True, check=False)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["result"]["anchored"] == {"count": 3, "lastSequence": 3}
    _save(audit, _edit_stale(_load(audit)))
    broken = subprocess.run([*command, str(anchor)], capture_output=True, text=True, check=False)
    assert broken.returncode == 4
    assert json.loads(broken.stdout)["result"]["reason"] == "event hash mismatch"


def test_disagreeing_anchors_for_one_sequence_fail(tmp_path: Path) -> None:
    audit, anchor = tmp_path / "audit.jsonl", tmp_path / "anchor.jsonl"
    _write(audit, 3, anchor_mode="file", anchor_path=anchor)
    anchors = _load(anchor)
    _save(anchor, [*anchors, {**anchors[1], "eventHash": "B" * 43}, anchors[1]])
    assert verify_chain(audit, anchor_path=anchor).reason == "anchor hash mismatch at sequence 2"
    _save(anchor, [*anchors, anchors[1]])
    result = verify_chain(audit, anchor_path=anchor)
    assert result.valid
    assert result.to_json()["anchored"] == {"count": 4, "lastSequence": 3}


def test_a_record_tampered_into_a_number_no_double_holds_is_a_hash_mismatch(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    audit = tmp_path / "audit.jsonl"
    _write(audit, 3)
    lines = audit.read_text(encoding="utf-8").splitlines()
    tampered = re.sub(r'"n":\s*2', '"n": 1e999', lines[1])
    assert tampered != lines[1]
    audit.write_text("\n".join([lines[0], tampered, lines[2]]) + "\n", encoding="utf-8")
    expected = {"valid": False, "records": 2, "reason": "event hash mismatch"}
    assert verify_chain(audit).to_json() == expected
    assert main(["audit-verify", "--audit", str(audit)]) == 4
    assert json.loads(capsys.readouterr().out)["result"] == expected


def test_a_record_nested_past_the_recursion_limit_is_not_a_record(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    audit = tmp_path / "audit.jsonl"
    _write(audit, 2)
    with audit.open("a", encoding="utf-8") as handle:
        handle.write('{"n": ' + "[" * 100_000 + "]" * 100_000 + "}\n")
    with pytest.raises(AuditError, match="line 3"):
        verify_chain(audit)
    assert main(["audit-verify", "--audit", str(audit)]) == 1
    assert "RecursionError" not in capsys.readouterr().err
