# SPDX-License-Identifier: Apache-2.0
"""A protect record's size is bounded, whatever the payload holds.

One detection entry per finding made a 1.19 MB request of 100,000 e-mail addresses a 14.7 MB
record: twelve bytes of log per byte of request, and, with ``limits.maxRequestBytes`` raised
a little, lines longer than the log's own readers take (``MAX_LINE_BYTES``). The list now
holds at most ``audit.maxDetectionsPerRecord`` entries and ``MAX_DETECTION_TEXT_BYTES`` of
types, rule ids and paths, ``detectionsOmitted`` counts the rest, and the summary stays
exact, so ``haechi report`` and ``haechi audit-verify`` read such a log as any other.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

import haechi
from haechi.audit import AuditSink, MemoryAuditStore, protect_event, sanitize_event
from haechi.audit._lines import MAX_LINE_BYTES, encode_line
from haechi.audit.events import DEFAULT_MAX_DETECTIONS, MAX_DETECTION_TEXT_BYTES
from haechi.config import default_config, parse_config
from haechi.crypto import init_key_file
from haechi.errors import ConfigError
from haechi.models import Finding
from haechi.payload import path_text
from haechi.runtime import Runtime
from tests.cli import json_output, run_haechi
from tests.upstream_server import Reply, gateway_in_front

pytestmark = pytest.mark.anyio

ADDRESSES = 100_000
#: 1.19 MB of text: 100,000 e-mail addresses.
MANY_ADDRESSES = " ".join(f"u{i}@e.io" for i in range(ADDRESSES))
#: The size docs/audit.md gives the record of that request: 1000 entries of some 145 bytes
#: and the rest of the record.
MANY_ADDRESSES_RECORD_BYTES = 150_000
#: The largest protect record with the built-in rules at the default and at the largest
#: ``audit.maxDetectionsPerRecord``, as docs/audit.md states them.
DEFAULT_RECORD_BOUND = 512 * 1024
LARGEST_RECORD_BOUND = 2 * 1024 * 1024


def _chat(text: str) -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "user", "content": text}]}


#: A finding in the text of the first message.
FINDING = Finding(
    type="email",
    rule_id="email",
    path=("messages", 0, "content"),
    kind="value",
    start=0,
    end=8,
    confidence=0.9,
    action="redact",
)
#: The text of a hashed key in a path, past the first: ``.key_`` and 12 hex digits.
KEY_TEXT = len(".key_0123456789ab")


def _path_of_length(length: int) -> tuple[str | int, ...]:
    """A path whose text is ``length`` characters long: hashed keys (the first without its
    dot) and one array index padding it out."""
    keys = (length - 2) // KEY_TEXT
    digits = length - (KEY_TEXT * keys - 1) - 2
    return (*(f"k{index}" for index in range(keys)), 10 ** (digits - 1))


def _text_bytes(entry: Mapping[str, Any]) -> int:
    """What one detection entry takes of the list's text budget."""
    return sum(len(entry[key].encode()) for key in ("type", "ruleId", "path"))


def _summary(count: int) -> dict[str, Any]:
    return {"detectionCount": count, "byType": {"email": count}, "byAction": {"redact": count}}


def _log_is_sound(log: Path, detections: int) -> None:
    """``haechi audit-verify`` accepts ``log`` and ``haechi report`` counts ``detections``."""
    verified = json_output(run_haechi("audit-verify", "--audit", log.name, cwd=log.parent))
    assert verified["result"]["valid"] is True
    report = json_output(run_haechi("report", "--audit", log.name, cwd=log.parent))
    assert report["summary"]["detections"] == detections
    assert report["summary"]["byType"] == {"email": detections}


def _assert_bounded(record: Mapping[str, Any], size: int) -> None:
    """``record`` lists the default number of detections in under ``size`` bytes and says
    how many it left out; its summary counts every address."""
    assert len(encode_line(record)) < size
    assert len(record["detections"]) == DEFAULT_MAX_DETECTIONS
    assert record["detectionsOmitted"] == ADDRESSES - DEFAULT_MAX_DETECTIONS
    assert record["summary"]["detectionCount"] == ADDRESSES
    assert record["summary"]["byType"] == {"email": ADDRESSES}


async def test_the_library_writes_a_bounded_record_of_a_payload_full_of_addresses(
    redacting_runtime: Runtime,
) -> None:
    result = await redacting_runtime.protect(_chat(MANY_ADDRESSES))
    assert result.summary["detectionCount"] == ADDRESSES
    log = Path(redacting_runtime.config.audit.path).resolve()
    (line,) = log.read_bytes().splitlines()
    _assert_bounded(json.loads(line), MANY_ADDRESSES_RECORD_BYTES)
    _log_is_sound(log, ADDRESSES)


def test_the_gateway_writes_a_bounded_record_of_a_request_full_of_addresses(
    tmp_path: Path,
) -> None:
    config = {"limits": {"maxRequestBytes": 2_000_000}, "policy": {"actions": {"email": "redact"}}}
    with gateway_in_front(tmp_path, config) as gateway:
        gateway.upstream.queue(Reply(text="done"))
        response = httpx.post(
            f"{gateway.url}/v1/chat/completions", json=_chat(MANY_ADDRESSES), timeout=120
        )
        assert response.status_code == 200
        (record,) = [event for event in gateway.audit() if event.get("detections")]
        log = Path(gateway.runtime.config.audit.path)
    _assert_bounded(record, MANY_ADDRESSES_RECORD_BYTES)
    _log_is_sound(log, ADDRESSES)


@given(findings=st.integers(0, 2500), cap=st.integers(0, 2000))
def test_a_record_lists_at_most_the_cap_and_counts_the_rest(findings: int, cap: int) -> None:
    event = protect_event(
        mode="enforce",
        blocked=False,
        payload={},
        findings=[FINDING] * findings,
        summary=_summary(findings),
        max_detections=cap,
    )
    record = sanitize_event(event)
    listed = min(findings, cap)
    assert len(record["detections"]) == listed
    assert record.get("detectionsOmitted", 0) == findings - listed
    assert ("detectionsOmitted" in record) == (findings > cap)
    assert record["summary"] == _summary(findings)


async def test_deep_paths_stop_the_list_at_its_text_budget(redacting_runtime: Runtime) -> None:
    """Findings as deep as ``limits.maxNestingDepth`` allows repeat a 4 KiB path each: an
    11 KB payload would otherwise make a 4.4 MB record."""
    depth = redacting_runtime.config.limits.max_nesting_depth - 1
    payload: Any = " ".join(f"u{i}@e.io" for i in range(1000))
    for _ in range(depth):
        payload = {"k": payload}
    result = await redacting_runtime.protect(payload)
    assert result.summary["detectionCount"] == 1000
    log = Path(redacting_runtime.config.audit.path).resolve()
    (line,) = log.read_bytes().splitlines()
    record = json.loads(line)
    listed = len(record["detections"])
    assert listed == MAX_DETECTION_TEXT_BYTES // _text_bytes(record["detections"][0])
    assert record["detectionsOmitted"] == 1000 - listed
    assert len(line) < MAX_DETECTION_TEXT_BYTES + 64 * 1024
    _log_is_sound(log, 1000)


@pytest.mark.parametrize(
    ("cap", "bound"),
    [(DEFAULT_MAX_DETECTIONS, DEFAULT_RECORD_BOUND), (10_000, LARGEST_RECORD_BOUND)],
)
@pytest.mark.parametrize("pick", [min, max], ids=["shortest-rule", "longest-rule"])
async def test_the_largest_record_stays_far_below_what_readers_take(
    memory_runtime: Runtime, cap: int, bound: int, pick: Any
) -> None:
    """``cap`` findings of the built-in rule with the shortest or the longest id and type,
    whose paths fill the text budget where they can, in a record under ``bound``: an eighth
    of ``MAX_LINE_BYTES`` at most."""
    rule = pick(memory_runtime.engine.rules, key=lambda rule: len(rule.id) + len(rule.type))
    named = len(rule.id) + len(rule.type)
    room = MAX_DETECTION_TEXT_BYTES // cap - named
    path = _path_of_length(room) if room > KEY_TEXT else ()
    finding = Finding(
        type=rule.type,
        rule_id=rule.id,
        path=path,
        kind="value",
        start=0,
        end=1,
        confidence=0.30000000000000004,
        action="tokenize",
    )
    summary = {"detectionCount": cap, "byType": {rule.type: cap}, "byAction": {"tokenize": cap}}
    event = protect_event(
        mode="enforce",
        blocked=False,
        payload={},
        findings=[finding] * cap,
        summary=summary,
        correlation_id="c" * 36,
        profile="p" * 64,
        max_detections=cap,
    )
    record = await AuditSink(MemoryAuditStore()).record(event)
    listed = min(cap, MAX_DETECTION_TEXT_BYTES // (named + len(path_text(path))))
    assert len(record["detections"]) == listed
    assert sum(map(_text_bytes, record["detections"])) <= MAX_DETECTION_TEXT_BYTES
    assert len(encode_line(record)) < bound <= MAX_LINE_BYTES // 8


@pytest.mark.parametrize(
    ("cap", "error"),
    [
        (-1, "greater than or equal to 0"),
        (10_001, "less than or equal to 10000"),
        (1.5, "a valid integer"),
        ("10", "a valid integer"),
        (True, "a valid integer"),
    ],
)
def test_the_cap_is_a_whole_number_from_0_to_10000(cap: object, error: str) -> None:
    with pytest.raises(ConfigError, match=f"audit.maxDetectionsPerRecord: Input should be {error}"):
        parse_config({"audit": {"maxDetectionsPerRecord": cap}})


async def test_the_cap_defaults_to_1000_and_0_keeps_counts_only(tmp_path: Path) -> None:
    assert default_config().audit.max_detections_per_record == DEFAULT_MAX_DETECTIONS == 1000
    init_key_file(tmp_path / "keys.json")
    runtime = haechi.create_runtime(
        {
            "mode": "enforce",
            "audit": {"sink": "memory", "maxDetectionsPerRecord": 0},
            "tokenVault": {"provider": "memory"},
            "keys": {"keyFile": str(tmp_path / "keys.json")},
        }
    )
    try:
        result = await runtime.protect(_chat("a@e.io b@e.io"))
        (record,) = [record async for record in runtime.audit.store.records()]
    finally:
        await runtime.aclose()
    assert result.summary["detectionCount"] == 2
    assert record["detections"] == []
    assert record["detectionsOmitted"] == 2


async def test_long_rule_ids_keep_the_record_within_what_readers_take(
    redacting_runtime: Runtime,
) -> None:
    """Every entry repeats its rule id and type. The configuration bounds a custom rule's
    (64 characters), not a detector plugin's: a 20,000-character id made 1000 findings a
    20 MB record, which ``haechi audit-verify`` and ``haechi report`` refused (and the store
    then refused to append to), so one request could stop the log."""
    finding = dataclasses.replace(FINDING, rule_id="r" * 20_000)
    event = protect_event(
        mode="enforce",
        blocked=False,
        payload={},
        findings=[finding] * 1000,
        summary=_summary(1000),
    )
    await redacting_runtime.audit.record(event)
    log = Path(redacting_runtime.config.audit.path).resolve()
    (line,) = log.read_bytes().splitlines()
    record = json.loads(line)
    assert len(line) < MAX_LINE_BYTES // 8
    listed = len(record["detections"])
    assert listed == MAX_DETECTION_TEXT_BYTES // _text_bytes(record["detections"][0])
    assert record["detectionsOmitted"] == 1000 - listed
    _log_is_sound(log, 1000)
