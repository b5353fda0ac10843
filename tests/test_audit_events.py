# SPDX-License-Identifier: Apache-2.0
"""Event builders (schema "1"), the payload shape hash and the summary reader."""

from __future__ import annotations

import hashlib
import json
import re
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from haechi._canonical import short_hash
from haechi.audit import (
    PATH_HASH_DOMAIN,
    PROXY_DECISIONS,
    AuditSink,
    FileAuditStore,
    iso_timestamp,
    keyed_path_hash,
    payload_shape_hash,
    protect_event,
    proxy_decision_event,
    read_summary,
    stream_event,
    vault_event,
    verify_chain,
)
from haechi.audit._shape import _FAST_DEPTH, _general
from haechi.cli import main
from haechi.crypto import LocalCryptoProvider, init_key_file
from haechi.errors import AuditError
from haechi.models import Finding, Identity

pytestmark = pytest.mark.anyio

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
IDENTITY = Identity(
    id="u-1",
    type="user",
    subject_hash="s" * 8,
    issuer_hash="i" * 8,
    provider="bearer",
    scopes=("admin",),
    labels={"team": "x"},
)
SUMMARY = {
    "detectionCount": 2,
    "byType": {"email": 1, "secret": 1},
    "byAction": {"redact": 1, "block": 1},
}


def _findings() -> list[Finding]:
    return [
        Finding(
            type="email",
            rule_id="email",
            path=("messages", 0, "content"),
            kind="value",
            start=5,
            end=17,
            confidence=0.9,
            action="redact",
        ),
        Finding(
            type="secret",
            rule_id="aws-access-key",
            path=("k",),
            kind="key",
            start=0,
            end=20,
            confidence=0.99,
            action=None,
        ),
    ]


def _common(event: dict[str, Any]) -> None:
    assert event["schemaVersion"] == "1"
    assert uuid.UUID(event["id"]).version == 4
    assert ISO.match(event["timestamp"])


def test_protect_event_shape() -> None:
    event = protect_event(
        mode="enforce",
        blocked=True,
        payload={"messages": [{"content": "x"}]},
        findings=_findings(),
        summary=SUMMARY,
        protocol="openai",
        operation="request:POST chat",
        correlation_id="c-1",
        identity=IDENTITY,
        profile="strict",
    )
    _common(event)
    assert list(event) == [
        "schemaVersion",
        "id",
        "correlationId",
        "timestamp",
        "protocol",
        "operation",
        "identity",
        "profile",
        "mode",
        "enforced",
        "blocked",
        "payloadShapeHash",
        "detections",
        "summary",
    ]
    assert event["identity"] == {
        "id": "u-1",
        "type": "user",
        "subjectHash": "s" * 8,
        "issuerHash": "i" * 8,
        "provider": "bearer",
    }
    assert (event["mode"], event["enforced"], event["blocked"]) == ("enforce", True, True)
    assert event["detections"] == [
        {
            "type": "email",
            "ruleId": "email",
            "path": "key_f5cccfb73751[0].key_ed7002b439e9",
            "kind": "value",
            "confidence": 0.9,
            "action": "redact",
            "enforced": True,
        },
        {
            "type": "secret",
            "ruleId": "aws-access-key",
            "path": "key_redacted",  # a key that holds a detected value is never hashed
            "kind": "key",
            "confidence": 0.99,
            "action": "unknown",
            "enforced": True,
        },
    ]
    assert event["summary"] == SUMMARY
    assert re.fullmatch(r"[0-9a-f]{12}", event["payloadShapeHash"])


def test_protect_event_defaults_and_non_enforcing_modes() -> None:
    event = protect_event(
        mode="dry-run",
        blocked=False,
        payload=[],
        findings=[],
        summary={"detectionCount": 0, "byType": {}, "byAction": {}},
    )
    assert (event["protocol"], event["operation"]) == ("custom", "protect")
    assert event["correlationId"] is event["identity"] is event["profile"] is None
    assert event["enforced"] is False
    assert (
        protect_event(mode="report-only", blocked=False, payload=1, findings=[], summary={})[
            "enforced"
        ]
        is False
    )


async def test_a_key_that_is_a_detected_value_is_withheld_from_paths_and_shape() -> None:
    """The short hash of a phone number written as a key is reversed by trying every number;
    neither the paths nor the shape hash may carry it."""
    import haechi

    phone = "010-7391-2846"
    runtime = haechi.create_runtime(
        {"mode": "enforce", "audit": {"sink": "memory"}, "tokenVault": {"provider": "memory"}}
    )
    payload = {"metadata": {"call_log": {phone: {"note": "mail jane@example.com"}}}}
    await runtime.protect(payload)
    (event,) = [record async for record in runtime.audit.store.records()]
    paths = [detection["path"] for detection in event["detections"]]
    hashed = short_hash(phone)
    assert all(hashed not in path for path in paths), paths
    assert any(path.endswith(".key_redacted") for path in paths)
    assert any(".key_redacted." in path for path in paths)  # the email below the phone key
    assert event["payloadShapeHash"] != payload_shape_hash(payload)
    assert event["payloadShapeHash"] == payload_shape_hash(
        {"metadata": {"call_log": {"key_redacted": {"note": "mail jane@example.com"}}}}
    )


@pytest.mark.parametrize(
    ("decision", "blocked"),
    [("reveal_allowed", False), ("reveal_denied", True), ("purge", False)],
)
def test_vault_event_shape(decision: str, blocked: bool) -> None:
    event = vault_event(
        operation="reveal",
        decision=decision,
        reason="reveal_policy_disabled",
        token="tok_abc",
        token_type="email",
        count=1,
        reveal_policy="disabled",
    )
    _common(event)
    assert event["protocol"] == "token-vault"
    assert event["operation"] == "token-vault:reveal"
    assert (event["identity"], event["mode"], event["enforced"]) == (None, "n/a", True)
    assert event["blocked"] is blocked
    assert (event["decision"], event["token"], event["tokenType"], event["count"]) == (
        decision,
        "tok_abc",
        "email",
        1,
    )
    assert event["summary"] == {"detectionCount": 0, "byType": {}, "byAction": {decision: 1}}


def test_vault_event_writes_absent_fields_as_null() -> None:
    event = vault_event(operation="purge-expired", decision="purge_expired", count=3)
    assert event["operation"] == "token-vault:purge-expired"
    assert event["token"] is event["tokenType"] is event["reason"] is None
    assert event["revealPolicy"] is event["revealOverride"] is None


@pytest.mark.parametrize(("decision", "implied"), sorted(PROXY_DECISIONS.items()))
def test_proxy_decision_event_shape(decision: str, implied: tuple[bool, bool]) -> None:
    event = proxy_decision_event(
        protocol="openai",
        route_id="chat",
        decision=decision,
        reason="why",
        mode="enforce",
        correlation_id="c-2",
        identity=IDENTITY,
        profile="p",
        path_hash="0123456789ab",
    )
    _common(event)
    assert event["operation"] == "proxy:openai:chat"
    assert (event["enforced"], event["blocked"]) == implied
    assert event["pathHash"] == "0123456789ab"
    assert event["routeId"] == "chat"
    assert event["identity"]["id"] == "u-1"
    assert event["summary"] == {"detectionCount": 0, "byType": {}, "byAction": {decision: 1}}


def test_the_path_hash_is_keyed_so_a_value_in_a_path_cannot_be_tried_back(
    tmp_path: Path,
) -> None:
    # A plain short hash of "/v1/users/<phone>/chat" is undone by hashing every phone number.
    init_key_file(tmp_path / "a.json")
    init_key_file(tmp_path / "b.json")
    one, other = LocalCryptoProvider(tmp_path / "a.json"), LocalCryptoProvider(tmp_path / "b.json")
    path = "/v1/users/010-1234-5678/chat"
    hashed = keyed_path_hash(one, path)
    assert hashed is not None
    assert re.fullmatch(r"[0-9a-f]{12}", hashed)
    assert hashed == one.hmac(path, PATH_HASH_DOMAIN)[:12] == keyed_path_hash(one, path)
    assert hashed != short_hash(path)
    assert keyed_path_hash(other, path) != hashed
    assert keyed_path_hash(one, "/v1/users/010-1234-5679/chat") != hashed


def test_a_path_hash_that_cannot_be_computed_is_left_out() -> None:
    class Broken:
        def hmac(self, data: str, domain: str) -> str:
            raise OSError("the key file is gone")

    assert keyed_path_hash(Broken(), "/v1/chat/completions") is None  # type: ignore[arg-type]


def test_proxy_decision_event_unknown_decision_needs_explicit_flags() -> None:
    with pytest.raises(ValueError, match="explicit"):
        proxy_decision_event(
            protocol="p",
            route_id=None,
            decision="custom",
            reason="r",
            mode="enforce",
            correlation_id=None,
        )
    event = proxy_decision_event(
        protocol="p",
        route_id=None,
        decision="custom",
        reason="r",
        mode="enforce",
        correlation_id=None,
        enforced=True,
        blocked=False,
    )
    assert (event["enforced"], event["blocked"], event["pathHash"]) == (True, False, None)


@pytest.mark.parametrize(
    ("blocked", "decision", "reason"),
    [
        (True, "stream_blocked", "stream_policy_block"),
        (False, "stream_inspected", "stream_inspected"),
    ],
)
def test_stream_event_shape(blocked: bool, decision: str, reason: str) -> None:
    tally = {"detectionCount": 1, "byType": {"email": 1}, "byAction": {"redact": 1}}
    event = stream_event(
        protocol="anthropic",
        route_id="messages",
        operation="POST messages",
        mode="enforce",
        blocked=blocked,
        summary=tally,
        correlation_id="c-3",
        path_hash="0123456789ab",
    )
    _common(event)
    assert event["operation"] == "response-stream:POST messages"
    assert (event["decision"], event["reason"], event["blocked"]) == (decision, reason, blocked)
    assert event["enforced"] is True
    assert event["summary"] == tally
    assert "detections" not in event


def test_stream_event_takes_a_specific_reason() -> None:
    event = stream_event(
        protocol="openai",
        route_id="chat",
        operation="chat",
        mode="enforce",
        blocked=True,
        summary={},
        correlation_id=None,
        reason="stream_frame_too_large",
    )
    assert (event["decision"], event["reason"]) == ("stream_blocked", "stream_frame_too_large")


async def test_every_builder_is_chained_verified_and_summed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    audit = tmp_path / "audit.jsonl"
    sink = AuditSink(FileAuditStore(audit))
    await sink.record(
        protect_event(
            mode="enforce", blocked=True, payload={"a": "b"}, findings=_findings(), summary=SUMMARY
        )
    )
    await sink.record(vault_event(operation="reveal", decision="reveal_denied"))
    await sink.record(
        proxy_decision_event(
            protocol="openai",
            route_id="chat",
            decision="auth_denied",
            reason="no_token",
            mode="enforce",
            correlation_id=None,
        )
    )
    await sink.record(
        stream_event(
            protocol="openai",
            route_id="chat",
            operation="chat",
            mode="dry-run",
            blocked=False,
            correlation_id=None,
            summary={"detectionCount": 1, "byType": {"email": 1}, "byAction": {"redact": 1}},
        )
    )
    assert verify_chain(audit).records == 4
    expected = {
        "events": 4,
        "blocked": 3,
        "detections": 3,
        "byType": {"email": 2, "secret": 1},
        "byAction": {"redact": 2, "block": 1, "reveal_denied": 1, "auth_denied": 1},
    }
    assert read_summary(audit) == expected
    assert main(["report", "--audit", str(audit)]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "ok": True,
        "auditPath": str(audit),
        "summary": expected,
    }


def test_summary_of_a_missing_file_is_zeros(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    zeros = {"events": 0, "blocked": 0, "detections": 0, "byType": {}, "byAction": {}}
    assert read_summary(tmp_path / "absent.jsonl") == zeros
    monkeypatch.chdir(tmp_path)
    assert main(["report"]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "ok": True,
        "auditPath": ".haechi/audit.jsonl",
        "summary": zeros,
    }


def test_summary_ignores_non_integer_counts_and_refuses_malformed_lines(tmp_path: Path) -> None:
    audit = tmp_path / "audit.jsonl"
    audit.write_text(
        '{"blocked":"yes","summary":{"detectionCount":true,"byType":{"a":"1","b":2}}}\n\n',
        encoding="utf-8",
    )
    assert read_summary(audit) == {
        "events": 1,
        "blocked": 0,
        "detections": 0,
        "byType": {"b": 2},
        "byAction": {},
    }
    audit.write_text("[1, 2]\n", encoding="utf-8")
    with pytest.raises(AuditError, match="line 1"):
        read_summary(audit)


def test_shape_hash_ignores_values_but_not_lengths_or_structure() -> None:
    base = payload_shape_hash({"to": "a@b.co", "n": 1, "ok": True})
    assert payload_shape_hash({"to": "x@y.zz", "n": 2.5, "ok": False}) == base
    assert payload_shape_hash({"to": "a@b.com", "n": 1, "ok": True}) != base
    assert payload_shape_hash({"n": 1, "to": "a@b.co", "ok": True}) != base
    assert payload_shape_hash({"to": "a@b.co", "n": "1", "ok": True}) != base
    assert payload_shape_hash([None]) != payload_shape_hash([True])
    assert payload_shape_hash("😀") == payload_shape_hash("ab")


def test_shape_hash_handles_deep_and_large_payloads() -> None:
    deep: Any = "leaf"
    for _ in range(50_000):
        deep = {"k": [deep]}
    assert re.fullmatch(r"[0-9a-f]{12}", payload_shape_hash(deep))
    wide = {f"key{i}": ["text", i, {"x": None}] for i in range(100_000)}
    assert payload_shape_hash(wide) != payload_shape_hash({})


@pytest.mark.parametrize("bad", [{1, 2}, {"k": b"x"}, {1: "int key"}])
def test_shape_hash_refuses_non_json(bad: Any) -> None:
    with pytest.raises(TypeError):
        payload_shape_hash(bad)


# --- the shape hash: the fast walk against the general one --------------------------------


def _general_shape_hash(payload: Any) -> str:
    digest = hashlib.sha256()
    for fragment in _general(payload):
        digest.update(fragment.encode("utf-8"))
    return digest.hexdigest()[:12]


class _Text(str):
    pass


_SHAPE_KEYS = st.one_of(
    st.sampled_from(["0", "1", "10", "2", "01", "-1", "4294967294", "4294967295", "1.5", "1a"]),
    st.sampled_from(["", "é", "😀", "k\ud800", "\ud83d\ude00", 'q"\\', "\x00"]),
    st.text(max_size=5),
)
_SHAPE_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=5),
    st.sampled_from(["😀", "\ud800", "\ud83d\ude00", "é" * 3]),
    st.builds(_Text, st.text(max_size=3)),
)
_SHAPES = st.recursive(
    _SHAPE_LEAVES,
    lambda children: (
        st.lists(children, max_size=4)
        | st.tuples(children, children)
        | st.dictionaries(_SHAPE_KEYS, children, max_size=4)
    ),
    max_leaves=24,
)


@settings(max_examples=300, deadline=None)
@given(_SHAPES)
def test_shape_hash_fast_walk_equals_the_general_walk(payload: Any) -> None:
    assert payload_shape_hash(payload) == _general_shape_hash(payload)


@pytest.mark.parametrize("depth", [_FAST_DEPTH - 1, _FAST_DEPTH, _FAST_DEPTH + 1, 10_000])
def test_shape_hash_is_the_same_on_either_side_of_the_fast_depth(depth: int) -> None:
    payload: Any = {"k": "leaf"}
    for level in range(depth):
        payload = [payload] if level % 2 else {"a": payload, "b": level}
    assert payload_shape_hash(payload) == _general_shape_hash(payload)


def test_shape_hash_of_a_wide_payload_is_hashed_in_batches() -> None:
    wide = {"rows": [{"id": index, "text": "x" * (index % 7)} for index in range(20_000)]}
    assert payload_shape_hash(wide) == _general_shape_hash(wide)


# --- ids and timestamps -------------------------------------------------------------------


def test_event_ids_are_random_rfc_4122_version_4_uuids() -> None:
    ids = [vault_event(operation="purge", decision="purge")["id"] for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    for text in ids:
        parsed = uuid.UUID(text)
        assert (parsed.version, parsed.variant) == (4, uuid.RFC_4122)
        assert str(parsed) == text
    # Each random hex digit takes many values across ids (none is stuck).
    for position in (0, 9, 15, 19, 35):
        assert len({text[position] for text in ids}) >= (4 if position == 19 else 12)


@pytest.mark.parametrize(
    "nanoseconds",
    [0, 999_999, 1_000_000_000_123_456_789, 1_700_000_000_999_999_999, 4_102_444_800_000_000_000],
)
def test_timestamps_are_written_as_datetime_writes_them(
    monkeypatch: pytest.MonkeyPatch, nanoseconds: int
) -> None:
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=nanoseconds // 1000)
    monkeypatch.setattr(time, "time_ns", lambda: nanoseconds)
    assert iso_timestamp() == iso_timestamp(moment)
    assert iso_timestamp() == moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def test_a_new_second_is_formatted_anew(monkeypatch: pytest.MonkeyPatch) -> None:
    for nanoseconds, expected in [
        (1_700_000_000_999_000_000, "2023-11-14T22:13:20.999Z"),
        (1_700_000_001_000_000_000, "2023-11-14T22:13:21.000Z"),
        (1_700_000_000_500_000_000, "2023-11-14T22:13:20.500Z"),  # the clock went back
    ]:
        monkeypatch.setattr(time, "time_ns", lambda value=nanoseconds: value)
        assert iso_timestamp() == expected


def test_the_current_time_is_read_from_the_clock() -> None:
    before = iso_timestamp(datetime.now(UTC))
    now = iso_timestamp()
    after = iso_timestamp(datetime.now(UTC))
    assert ISO.match(now)
    assert before <= now <= after
