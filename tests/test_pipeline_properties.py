# SPDX-License-Identifier: Apache-2.0
"""Properties of protect and scan over generated JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from haechi.crypto import init_key_file
from haechi.errors import LimitError
from haechi.models import Entry
from haechi.payload import collect_entries
from haechi.runtime import Runtime, create_runtime

#: Values of many detected types, and filler words with neither digits nor separators that
#: could join them into something else.
SAMPLES = (
    "minji.kim@example.com",
    "seoul@example.co.kr",
    "010-1234-5678",
    "+82 10 1234 5678",
    "4111 1111 1111 1111",
    "4242424242424242",
    "078-05-1120",
    "DE89370400440532013000",
    "sk_live_abcdefghijklmnopqrstuvwx",
    "AKIAIOSFODNN7EXAMPLE",
    "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
    "900101-1234568",
    "password=hunter2hunter2hunter2",
)
FILLER = ("alpha", "bravo", "charlie", "delta", "echo", "note", "call", "mail")

text_values = st.lists(st.sampled_from(SAMPLES + FILLER), min_size=1, max_size=5).map(" and ".join)
json_with_pii = st.recursive(
    st.one_of(text_values, st.integers(), st.sampled_from([4111111111111111, True, None])),
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.one_of(text_values, st.sampled_from(FILLER)), children, max_size=4),
    ),
    max_leaves=12,
)
any_json = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(),
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=5), st.dictionaries(st.text(), children, max_size=5)
    ),
    max_leaves=25,
)

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("properties")
    init_key_file(path / "keys.json")
    return path


def _runtime(workdir: Path, action: str, **extra: Any) -> Runtime:
    actions = dict.fromkeys(("card", "injection", "secret", "api_key", "kr_rrn"), action)
    return create_runtime(
        {
            "policy": {
                "mode": "enforce",
                "presets": [],
                "defaultAction": action,
                "actions": actions,
            },
            "keys": {"keyFile": str(workdir / "keys.json")},
            "audit": {"path": str(workdir / f"audit-{action}.jsonl")},
            "tokenVault": {"provider": "memory"},
            **extra,
        }
    )


@pytest.fixture(scope="module")
def default_runtime(workdir: Path) -> Runtime:
    return create_runtime(
        {
            "policy": {"mode": "enforce"},
            "keys": {"keyFile": str(workdir / "keys.json")},
            "audit": {"sink": "memory"},
            "tokenVault": {"provider": "memory"},
        }
    )


@FAST
@given(payload=any_json, direction=st.sampled_from(["request", "response"]))
def test_protect_never_raises_on_any_json(
    default_runtime: Runtime, payload: Any, direction: str
) -> None:
    result = default_runtime.protect_sync(payload, direction=direction)
    if result.blocked:
        assert result.payload is None
        assert result.summary["byAction"]["block"] >= 1


def _detected_values(runtime: Runtime, payload: Any) -> set[str]:
    entries = collect_entries(payload)
    detections = runtime.engine.detect(entries, direction="request", scan_numbers=True)
    return {detection.value for detection in detections}


@pytest.mark.parametrize("action", ["redact", "mask", "tokenize", "encrypt"])
def test_no_detected_value_survives_in_the_payload_or_the_audit(workdir: Path, action: str) -> None:
    runtime = _runtime(workdir, action)
    audit_file = workdir / f"audit-{action}.jsonl"

    @FAST
    @given(payload=json_with_pii)
    def check(payload: Any) -> None:
        values = _detected_values(runtime, payload)
        result = runtime.protect_sync(payload)
        assert not result.blocked
        output = json.dumps(result.payload, ensure_ascii=False)
        audit = audit_file.read_text("utf-8")
        for value in values:
            assert value not in output
            assert value not in audit

    check()


def _leaf(payload: Any, entry_path: tuple[Any, ...], kind: str) -> str:
    for entry in collect_entries(payload):
        if entry.path == entry_path and entry.kind == kind:
            return entry.value
    raise AssertionError("no such entry")


@FAST
@given(payload=st.one_of(json_with_pii, any_json))
def test_scan_offsets_always_slice_back(default_runtime: Runtime, payload: Any) -> None:
    try:
        entries: list[Entry] = collect_entries(payload)
    except LimitError:
        return
    for detection in default_runtime.engine.detect(entries, direction="response"):
        text = _leaf(payload, detection.path, detection.kind)
        assert 0 <= detection.start < detection.end <= len(text)
        assert text[detection.start : detection.end] == detection.value
    for finding in default_runtime.scan(payload, direction="request"):
        text = _leaf(payload, finding.path, finding.kind)
        assert 0 <= finding.start < finding.end <= len(text)
