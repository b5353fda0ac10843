# SPDX-License-Identifier: Apache-2.0
"""A prepared event stamps the same record and line as the general path, byte for byte.

The general path is :func:`build_integrity_record` followed by :func:`encode_line` (and the
canonical text behind ``eventHash`` is :func:`canonical_json`); the vectors in
``tests/test_audit_vectors.py`` pin those to the reference. Here every event and head is
stamped both ways and must agree, including events that are not plain (exponent floats, keys
beyond U+FFFF, lone surrogates), keys that sort before ``auditIntegrity`` and heads of
unexpected types, which the prepared event hands to the general path.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from haechi.audit import (
    AuditSink,
    FileAuditStore,
    MemoryAuditStore,
    build_integrity_record,
    protect_event,
    sanitize_event,
    verify_chain,
)
from haechi.audit._lines import encode_line
from haechi.audit._prepared import PreparedEvent, build_with_line
from haechi.audit.sanitize import sanitize_for_chain
from haechi.errors import AuditError
from haechi.models import Finding

pytestmark = pytest.mark.anyio

# Keys around "auditIntegrity" in sort order, keys the builders write, keys that need the
# exact canonical path, and arbitrary text.
_KEYS = st.one_of(
    st.sampled_from(
        ["", "A", "Z", "a", "aa", "action", "auditIntegrity", "auditIntegrityX", "b", "id"]
    ),
    st.sampled_from(
        ["type", "summary", "byType", "value", "😀", "\uffff", "k\ud800", 'q"\\', "\u2028"]
    ),
    st.text(max_size=6),
)
_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1),
    st.floats(),
    st.sampled_from([0.5, 1e-7, 2.0, -0.0, 1e21, "é", "\ud83d\ude00", "\ud800", "\x00\n"]),
    st.text(max_size=6),
)
_JSON = st.recursive(
    _LEAVES,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(_KEYS, children, max_size=3),
    max_leaves=16,
)
_EVENTS = st.dictionaries(_KEYS, _JSON, max_size=8)
_HEADS = st.one_of(
    st.none(),
    st.fixed_dictionaries(
        {
            "sequence": st.one_of(st.integers(min_value=1, max_value=2**60), st.just(True)),
            "eventHash": st.one_of(
                st.text(alphabet="ABCxyz019-_", min_size=43, max_size=43),
                st.sampled_from(['q"\\', "é", "😀", "x\ud800", ""]),
            ),
        }
    ),
)


def _general(head: Any, event: dict[str, Any]) -> tuple[str, Any]:
    try:
        record = build_integrity_record(head, sanitize_event(event))
        return "ok", (record, encode_line(record))
    except (TypeError, ValueError, UnicodeEncodeError) as exc:
        return "error", type(exc).__name__


def _prepared(head: Any, event: dict[str, Any]) -> tuple[str, Any]:
    try:
        return "ok", PreparedEvent(event).stamp(head)
    except (TypeError, ValueError, UnicodeEncodeError) as exc:
        return "error", type(exc).__name__


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_EVENTS, _HEADS)
def test_stamp_equals_the_general_path(event: dict[str, Any], head: Any) -> None:
    expected = _general(head, event)
    got = _prepared(head, event)
    assert got[0] == expected[0]
    if expected[0] == "ok":
        record, line = got[1]
        assert line == expected[1][1]
        assert record == expected[1][0]
        assert list(record) == list(expected[1][0])
        assert PreparedEvent(event)(head) == record
    else:
        assert got == expected


def test_events_the_builders_write_take_the_spliced_path() -> None:
    finding = Finding(
        type="email",
        rule_id="email",
        path=("messages", 0, "content"),
        kind="value",
        start=0,
        end=5,
        confidence=0.9,
        action="redact",
    )
    event = protect_event(
        mode="enforce",
        blocked=False,
        payload={"messages": [{"content": "x"}]},
        findings=[finding, finding],
        summary={"detectionCount": 2, "byType": {"email": 2}, "byAction": {"redact": 2}},
    )
    assert sanitize_for_chain(event)[1]  # plain: its texts are made once, up front
    head = {"sequence": 41, "eventHash": "h" * 43}
    record, line = PreparedEvent(event).stamp(head)  # type: ignore[arg-type]
    assert line == encode_line(record)
    assert record == build_integrity_record(head, sanitize_event(event))  # type: ignore[arg-type]
    assert record["auditIntegrity"]["sequence"] == 42


def test_a_prepared_event_is_sanitized_once_when_it_is_made() -> None:
    event: dict[str, Any] = {"kept": {"n": 1}, "secret": "MARK", "auditIntegrity": {"x": 1}}
    prepared = PreparedEvent(event)
    event["kept"]["n"] = 2  # later changes to the caller's event do not reach the record
    record, line = prepared.stamp(None)
    assert record["kept"] == {"n": 1}
    assert b"MARK" not in line
    assert json.loads(line) == record
    with pytest.raises(AuditError, match="not bytes"):
        PreparedEvent({"field": b"raw"})


def test_any_other_build_is_encoded_by_the_store() -> None:
    def build(previous: Any) -> dict[str, Any]:
        return build_integrity_record(previous, {"n": 1})

    record, line = build_with_line(build, None)
    assert line == encode_line(record)
    assert record["auditIntegrity"]["sequence"] == 1


@pytest.mark.parametrize("store_kind", ["memory", "jsonl"])
async def test_stores_persist_the_spliced_lines(tmp_path: Path, store_kind: str) -> None:
    path = tmp_path / "audit.jsonl"
    store = MemoryAuditStore() if store_kind == "memory" else FileAuditStore(path)
    sink = AuditSink(store)
    events: list[dict[str, Any]] = [
        {"n": 1, "text": "héllo 😀", "f": 0.25},
        {"Early": True, "action": "sorts before auditIntegrity"},
        {"float": 1e-7, "key 😀": 1},  # not plain: the general path
        {},
    ]
    written = [await sink.record(event) for event in events]
    stored = [record async for record in store.records()]
    assert stored == written
    if store_kind == "jsonl":
        assert path.read_bytes() == b"".join(encode_line(record) for record in written)
        assert verify_chain(path).records == len(events)
