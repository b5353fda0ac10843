# SPDX-License-Identifier: Apache-2.0
"""The sanitizer: no raw values in the log, and only JSON is ever hashed."""

from __future__ import annotations

import datetime as dt
import enum
import json
import math
import tempfile
from pathlib import Path
from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from haechi._canonical import canonical_json, plain_canonical_json
from haechi.audit import (
    COUNT_MAP_KEYS,
    FORBIDDEN_KEYS,
    AuditSink,
    FileAuditStore,
    MemoryAuditStore,
    protect_event,
    sanitize_event,
    verify_chain,
    verify_records,
)
from haechi.audit.sanitize import sanitize_for_chain
from haechi.errors import AuditError
from haechi.models import Finding, Identity

pytestmark = pytest.mark.anyio

MARK = "MARKER-7f3a"


async def _persist(tmp_path: Path, *events: dict[str, Any]) -> list[dict[str, Any]]:
    sink = AuditSink(FileAuditStore(tmp_path / "audit.jsonl"))
    return [await sink.record(event) for event in events]


async def test_forbidden_keys_go_at_every_depth_and_the_chain_verifies(tmp_path: Path) -> None:
    event = {
        "id": "e1",
        "value": MARK,
        "keep": {"content": MARK, "inner": [{"prompt": MARK, "ok": 1}, {"secret": MARK}]},
        "list": [[{"message": {"payload": MARK}}], "plain"],
        "identity": {"id": "u1", "scopes": [MARK], "labels": {"team": MARK}},
        "sub": "subject-hash-ok",
        "email": "kept-as-a-key-name",
    }
    (record,) = await _persist(tmp_path, event)
    assert record["keep"] == {"inner": [{"ok": 1}, {}]}
    assert record["list"] == [[{}], "plain"]
    assert record["identity"] == {"id": "u1"}
    assert record["sub"] == "subject-hash-ok"
    assert record["email"] == "kept-as-a-key-name"
    assert "value" not in record
    assert MARK.encode() not in (tmp_path / "audit.jsonl").read_bytes()
    assert verify_chain(tmp_path / "audit.jsonl").valid


@pytest.mark.parametrize(
    "key", ["Authorization", "AUTHORIZATION", "client-secret", "accessToken", "Refresh_Token"]
)
def test_forbidden_keys_match_whatever_the_spelling(key: str) -> None:
    assert sanitize_event({key: MARK, "nested": [{key: MARK}]}) == {"nested": [{}]}


def test_every_forbidden_key_is_removed() -> None:
    event = {key: MARK for key in FORBIDDEN_KEYS} | {"kept": 1}
    assert sanitize_event(event) == {"kept": 1}


async def test_counts_keep_types_named_like_forbidden_keys(tmp_path: Path) -> None:
    summary = {
        "detectionCount": 3,
        "byType": {"secret": 1, "value": 1, "email": 1},
        "byAction": {"block": 2, "redact": 1},
        "suppressedByType": {"secret": 0},
        "droppedByType": {},
    }
    (record,) = await _persist(tmp_path, {"summary": summary})
    assert record["summary"] == summary
    stored = json.loads((tmp_path / "audit.jsonl").read_text(encoding="utf-8"))
    assert stored["summary"]["byType"]["secret"] == 1
    assert verify_chain(tmp_path / "audit.jsonl").valid


def test_a_counts_map_holding_text_is_sanitized_like_any_object() -> None:
    clean = sanitize_event({"byType": {"secret": MARK, "email": 2}})
    assert clean == {"byType": {"email": 2}}


def test_input_is_not_modified_and_integrity_cannot_be_injected() -> None:
    event: dict[str, Any] = {
        "a": {"value": MARK},
        "auditIntegrity": {"sequence": 99, "eventHash": "x"},
    }
    before = json.dumps(event, sort_keys=True)
    assert sanitize_event(event) == {"a": {}}
    assert json.dumps(event, sort_keys=True) == before


class _Colour(enum.StrEnum):
    RED = "red"


class _Level(enum.IntEnum):
    HIGH = 3


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        (math.nan, None),
        (math.inf, None),
        (-math.inf, None),
        ((1, "two", (3.5,)), [1, "two", [3.5]]),
        (_Colour.RED, "red"),
        (_Level.HIGH, 3),
        ("lone \ud800 half", "lone \ufffd half"),
        ("pair \ud83d\ude00 joined", "pair \U0001f600 joined"),
        (2**53 - 1, 2**53 - 1),
        (-0.0, -0.0),
    ],
)
async def test_non_json_values_are_normalised_and_verify(
    tmp_path: Path, raw: Any, normalised: Any
) -> None:
    (record,) = await _persist(tmp_path, {"field": raw, "nested": [{"field": raw}]})
    assert record["field"] == normalised
    assert record["nested"] == [{"field": normalised}]
    assert type(record["field"]) is type(normalised)
    assert verify_chain(tmp_path / "audit.jsonl").valid


@pytest.mark.parametrize(
    "raw",
    [
        b"bytes",
        bytearray(b"x"),
        {"a", "b"},
        frozenset({1}),
        dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
        object(),
        2**53,
        -(2**60),
        {1: "int key"},
    ],
    ids=[
        "bytes",
        "bytearray",
        "set",
        "frozenset",
        "datetime",
        "object",
        "2**53",
        "-2**60",
        "int-key",
    ],
)
async def test_values_without_one_json_meaning_are_refused(tmp_path: Path, raw: Any) -> None:
    sink = AuditSink(FileAuditStore(tmp_path / "audit.jsonl"))
    with pytest.raises(AuditError) as caught:
        await sink.record({"ok": 1, "nested": {"field": raw}})
    assert "int key" not in str(caught.value)
    assert not (tmp_path / "audit.jsonl").exists()


def test_refusal_messages_name_the_type_not_the_value() -> None:
    with pytest.raises(AuditError, match="not bytes") as caught:
        sanitize_event({"field": MARK.encode()})
    assert MARK not in str(caught.value)


def test_nesting_is_bounded() -> None:
    deep: Any = "leaf"
    for _ in range(40):
        deep = {"d": deep}
    with pytest.raises(AuditError, match="32 levels"):
        sanitize_event(deep)
    listy: Any = "leaf"
    for _ in range(40):
        listy = [listy]
    with pytest.raises(AuditError, match="32 levels"):
        sanitize_event({"l": listy})


def test_a_non_mapping_event_is_refused() -> None:
    with pytest.raises(AuditError, match="JSON object"):
        sanitize_event(["not", "an", "object"])  # type: ignore[arg-type]


async def test_no_plaintext_reaches_the_audit_or_anchor_files(tmp_path: Path) -> None:
    audit, anchor = tmp_path / "audit.jsonl", tmp_path / "anchor.jsonl"
    sink = AuditSink(FileAuditStore(audit), anchor_mode="file", anchor_path=anchor)
    identity = Identity(
        id="svc-1",
        type="service",
        subject_hash="sh",
        issuer_hash="ih",
        provider="bearer",
        scopes=(f"scope-{MARK}",),
        labels={"team": f"label-{MARK}"},
    )
    finding = Finding(
        type="email",
        rule_id="email",
        path=("messages", 0, f"key-{MARK}"),
        kind="value",
        start=0,
        end=5,
        confidence=0.9,
        action="redact",
    )
    event = protect_event(
        mode="enforce",
        blocked=False,
        payload={"messages": [{f"key-{MARK}": f"mail {MARK}@example.com"}]},
        findings=[finding],
        summary={"detectionCount": 1, "byType": {"email": 1}, "byAction": {"redact": 1}},
        identity=identity,
    )
    await sink.record(event)
    await sink.record(
        {
            "decision": "plugin.authenticate.deny",
            "claims": {"sub": MARK},
            "credential": MARK,
            "entry": MARK,
            "signature": MARK,
            "details": [{"plaintext": MARK, "code": MARK, "state": MARK, "nonce": MARK}],
            "oauth": {
                "access_token": MARK,
                "id_token": MARK,
                "refresh_token": MARK,
                "code_verifier": MARK,
                "client_secret": MARK,
            },
            "subject": MARK,
            "issuer": MARK,
        }
    )
    for path in (audit, anchor):
        data = path.read_bytes()
        assert MARK.encode() not in data
        assert MARK.encode("utf-16-le") not in data
    assert verify_chain(audit, anchor_path=anchor).valid


_json_leaf = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text()
)
_json = st.recursive(
    _json_leaf,
    lambda children: (
        st.lists(children, max_size=4)
        | st.tuples(children, children)
        | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=st.lists(st.dictionaries(st.text(max_size=8), _json, max_size=5), max_size=3))
def test_any_json_like_event_gives_a_chain_that_verifies(events: list[dict[str, Any]]) -> None:
    async def run(directory: Path) -> list[dict[str, Any]]:
        sink = AuditSink(FileAuditStore(directory / "audit.jsonl"))
        memory = AuditSink(MemoryAuditStore())
        written = [await sink.record(event) for event in events]
        mirrored = [await memory.record(event) for event in events]
        for left, right in zip(written, mirrored, strict=True):
            assert left["auditIntegrity"]["sequence"] == right["auditIntegrity"]["sequence"]
        return written

    with tempfile.TemporaryDirectory() as name:
        directory = Path(name)
        written = anyio.run(run, directory)
        if written:
            result = verify_chain(directory / "audit.jsonl")
            assert result.valid, result.reason
            assert result.records == len(events)
        assert verify_records(written).valid


# --- the fast walk against a plain reading of the rules -------------------------------------


def _folded(key: str) -> str:
    return key.casefold().replace("_", "").replace("-", "")


_FORBIDDEN = {_folded(key) for key in FORBIDDEN_KEYS}


def _reference(value: Any, depth: int) -> Any:
    """The sanitizer's rules written out plainly, one value at a time (no fast paths).

    ``depth`` is the nesting of the container holding ``value`` (0 for the event itself).
    """
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return str(value).encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if isinstance(value, int):
        if abs(int(value)) > 2**53 - 1:
            raise AuditError("unsafe integer")
        return int(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, dict):
        if depth + 1 > 32:
            raise AuditError("too deep")
        clean: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise AuditError("key")
            counts = isinstance(item, dict) and all(
                isinstance(n, str) and type(c) is not bool and isinstance(c, int)
                for n, c in item.items()
            )
            if key in COUNT_MAP_KEYS and counts:
                clean[key] = {_reference(n, depth): _reference(c, depth) for n, c in item.items()}
            elif _folded(key) not in _FORBIDDEN:
                clean[_reference(key, depth)] = _reference(item, depth + 1)
        return clean
    if isinstance(value, list | tuple):
        if depth + 1 > 32:
            raise AuditError("too deep")
        return [_reference(item, depth + 1) for item in value]
    raise AuditError("not JSON")


class _Text(str):
    pass


class _Number(int):
    pass


_EVENT_KEYS = st.one_of(
    st.sampled_from(sorted(FORBIDDEN_KEYS | COUNT_MAP_KEYS))
    | st.sampled_from(["type", "id", "summary", "detections", "Secret", "client-secret", "😀"])
    | st.sampled_from(["k\ud800", "\ud83d\ude00", "\uffff", "auditIntegrity"])
    | st.builds(_Text, st.sampled_from(["type", "value", "byType", "x"])),
    st.text(max_size=6),
)
_EVENT_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**54), max_value=2**54)
    | st.floats()
    | st.text(max_size=5)
    | st.sampled_from(["\ud800", "\ud83d\ude00", 1e-7, 2.0, -0.0, b"raw", frozenset()])
    | st.builds(_Text, st.text(max_size=3))
    | st.builds(_Number, st.integers(min_value=-9, max_value=9))
)
_EVENT_VALUES = st.recursive(
    _EVENT_LEAVES,
    lambda children: (
        st.lists(children, max_size=4)
        | st.tuples(children, children)
        | st.dictionaries(_EVENT_KEYS, children, max_size=4)
    ),
    max_leaves=24,
)


def _nested(depth: int) -> Any:
    value: Any = "leaf"
    for level in range(depth):
        value = {"d": value} if level % 2 else [value]
    return value


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        st.dictionaries(_EVENT_KEYS, _EVENT_VALUES, max_size=6),
        st.integers(min_value=28, max_value=36).map(lambda depth: {"x": _nested(depth)}),
    )
)
def test_the_sanitizer_follows_its_rules_and_knows_when_it_is_plain(event: dict[str, Any]) -> None:
    body = {key: value for key, value in event.items() if key != "auditIntegrity"}
    try:
        expected = _reference(body, 0)
    except AuditError:
        with pytest.raises(AuditError):
            sanitize_for_chain(event)
        return
    clean, plain = sanitize_for_chain(event)
    assert clean == expected
    assert json.dumps(clean) == json.dumps(expected)  # the same key order, too
    assert sanitize_event(event) == clean
    stack: list[Any] = [clean]
    while stack:  # only the plain JSON types remain
        item = stack.pop()
        assert type(item) in (dict, list, str, int, float, bool, type(None))
        if type(item) is dict:
            assert all(type(key) is str for key in item)
            stack.extend(item.values())
        elif type(item) is list:
            stack.extend(item)
    if plain:
        assert plain_canonical_json(clean) == canonical_json(clean)
