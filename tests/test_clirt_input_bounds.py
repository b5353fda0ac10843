# SPDX-License-Identifier: Apache-2.0
"""``protect`` and ``scan`` read at most ``limits.maxRequestBytes`` of what they are given.

Both used to hold their whole input (``protect`` all of it, ``scan`` a whole line): ``yes |
haechi protect``, or a file of many gigabytes, grew the process until the machine swapped.
Real ``haechi`` subprocesses, fed by a writer that never stops or by a sparse file far over
the bound. Each runs with its data segment capped, so a regression fails with a
``MemoryError`` instead of taking the machine's memory; its peak resident size is read
from the kernel when it is reaped.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Final

import pytest

from haechi.audit._lines import MAX_LINE_BYTES
from tests.cli import (
    CappedRun,
    endless_writer,
    json_output,
    run_haechi,
    run_haechi_capped,
    run_haechi_on_terminal,
)

#: Peak resident size a refused command stays under, in KiB (it starts at about 60 MiB).
_PEAK_KIB: Final = 256 * 1024
#: A value that must never be shown back, repeated by the writers.
_VALUE: Final = "minji.kim@example.com"
_DEFAULT_LIMIT: Final = 1048576
#: What writers repeat without end: a JSON array that never closes, a line that never ends.
_ENDLESS = {"protect": f'["{_VALUE}", ', "scan": f'"{_VALUE}" '}
_REFUSED = {
    "protect": "haechi: the input exceeds limits.maxRequestBytes ({limit} bytes)\n",
    "scan": "haechi: line {line} of the input exceeds limits.maxRequestBytes ({limit} bytes)\n",
}


def _assert_refused(done: CappedRun, expected: str) -> None:
    """Refused in one line naming the bound, quoting nothing, in bounded memory."""
    assert done.returncode == 1, done.stderr
    assert done.stderr == expected
    assert _VALUE not in done.stdout
    assert 0 < done.peak_kib < _PEAK_KIB


@pytest.mark.parametrize("command", ["protect", "scan"])
def test_an_input_without_end_is_refused_while_it_is_still_written(
    tmp_path: Path, command: str
) -> None:
    with endless_writer(_ENDLESS[command]) as pipe:
        done = run_haechi_capped(command, cwd=tmp_path, stdin=pipe)
    _assert_refused(done, _REFUSED[command].format(line=1, limit=_DEFAULT_LIMIT))
    assert not (tmp_path / ".haechi").exists()


@pytest.mark.parametrize("command", ["protect", "scan"])
def test_a_file_of_gigabytes_is_refused_after_the_bound(tmp_path: Path, command: str) -> None:
    big = tmp_path / "big.json"
    with big.open("wb") as handle:
        handle.write(json.dumps([_VALUE]).encode())
        handle.truncate(16 << 30)  # sparse: 16 GiB that take no room on disk
    done = run_haechi_capped(command, "big.json", cwd=tmp_path)
    _assert_refused(done, _REFUSED[command].format(line=1, limit=_DEFAULT_LIMIT))


def _configure_limit(directory: Path, limit: int) -> None:
    config = {"limits": {"maxRequestBytes": limit}}
    (directory / "haechi.config.json").write_text(json.dumps(config), "utf-8")


def _document_of(size: int) -> bytes:
    """A JSON document of exactly ``size`` bytes holding :data:`_VALUE`."""
    head = json.dumps({"to": _VALUE, "pad": ""}).encode()
    return head[:-2] + b" " * (size - len(head)) + head[-2:]


def test_protect_takes_a_document_of_exactly_the_configured_limit(tmp_path: Path) -> None:
    _configure_limit(tmp_path, 4096)
    (tmp_path / "at.json").write_bytes(_document_of(4096))
    (tmp_path / "over.json").write_bytes(_document_of(4097))
    at = run_haechi_capped("protect", "at.json", cwd=tmp_path)
    assert at.returncode == 0, at.stderr
    assert json.loads(at.stdout)["summary"]["byType"] == {"email": 1}
    over = run_haechi_capped("protect", "over.json", cwd=tmp_path)
    _assert_refused(over, _REFUSED["protect"].format(limit=4096))


def test_scan_bounds_each_line_without_its_line_end(tmp_path: Path) -> None:
    _configure_limit(tmp_path, 4096)
    lines = [_document_of(4096) + b"\r\n", _document_of(4096) + b"\n", _document_of(4097)]
    (tmp_path / "in.jsonl").write_bytes(b"".join(lines))
    done = run_haechi_capped("scan", "in.jsonl", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr == _REFUSED["scan"].format(line=3, limit=4096)
    printed = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(entry["line"], len(entry["findings"])) for entry in printed] == [(1, 1), (2, 1)]


def test_on_a_terminal_the_refusal_starts_a_line_after_the_progress(tmp_path: Path) -> None:
    read = _document_of(1 << 16) + b"\n"
    lines = [read] * 17 + [_document_of(_DEFAULT_LIMIT + 1)]  # progress is drawn past 1 MiB
    (tmp_path / "in.jsonl").write_bytes(b"".join(lines))
    process, shown = run_haechi_on_terminal("scan", "in.jsonl", cwd=tmp_path)
    assert process.returncode == 1
    assert len(process.stdout.splitlines()) == 17
    progress, refusal = shown.rsplit(b"\r\n", 2)[:2]
    assert progress.startswith(b"\rhaechi scan: 1.0 MiB")
    expected = _REFUSED["scan"].format(line=18, limit=_DEFAULT_LIMIT)
    assert refusal == expected.removesuffix("\n").encode()


#: ``(arguments reading /dev/stdin, what the refusal names)`` for each audit reader.
_AUDIT_READERS = {
    "report": (["report", "--audit", "/dev/stdin"], "/dev/stdin"),
    "audit-verify": (["audit-verify", "--audit", "/dev/stdin"], "/dev/stdin"),
    "anchor": (
        ["audit-verify", "--audit", ".haechi/audit.jsonl", "--anchor", "/dev/stdin"],
        "anchor file /dev/stdin",
    ),
}


@pytest.mark.parametrize(("args", "name"), _AUDIT_READERS.values(), ids=_AUDIT_READERS.keys())
def test_an_audit_line_without_end_is_refused(tmp_path: Path, args: list[str], name: str) -> None:
    json_output(run_haechi("protect", stdin=json.dumps({"to": _VALUE}), cwd=tmp_path))
    with endless_writer(f'{{"to": "{_VALUE}", ') as pipe:
        done = run_haechi_capped(*args, cwd=tmp_path, stdin=pipe)
    _assert_refused(done, f"haechi: {name}: line 1 is longer than {MAX_LINE_BYTES} bytes\n")


def test_a_last_record_the_readers_refuse_is_not_chained_onto(tmp_path: Path) -> None:
    """A record padded past the readers' bound keeps its hash (whitespace is not hashed), and
    ``audit-verify`` refuses the log; ``protect`` used to append to it all the same, reading
    the whole line, so the log grew records no reader could reach."""
    json_output(run_haechi("protect", stdin=json.dumps({"to": _VALUE}), cwd=tmp_path))
    log = tmp_path / ".haechi" / "audit.jsonl"
    log.write_bytes(b"{" + b" " * MAX_LINE_BYTES + log.read_bytes()[1:])
    refused = f"haechi: .haechi/audit.jsonl: line 1 is longer than {MAX_LINE_BYTES} bytes\n"
    assert run_haechi("audit-verify", cwd=tmp_path).stderr == refused
    before = log.read_bytes()
    done = run_haechi("protect", stdin=json.dumps({"to": _VALUE}), cwd=tmp_path)
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == (
        f"haechi: the last audit record is longer than {MAX_LINE_BYTES} bytes, more than the"
        " log's readers take; repair the log before appending\n"
    )
    assert log.read_bytes() == before
