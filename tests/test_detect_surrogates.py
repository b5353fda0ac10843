# SPDX-License-Identifier: Apache-2.0
"""Lone surrogates: any Python ``str`` is inspected without raising.

``json.loads('"\\ud800"')`` yields a string holding a lone surrogate, so every JSON body can
carry one. Detection treats such code points as ordinary characters that match no rule; it
must neither raise (the gateway would answer 500 and streams would stop) nor lose the
findings around them.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from haechi.detect import DetectionEngine, default_rules
from haechi.runtime import Runtime

ENGINE = DetectionEngine(default_rules())
DECODING = DetectionEngine(default_rules(), decode_and_rescan=True)
#: Every code point, surrogates included (the default ``st.text`` leaves them out).
ANY_TEXT = st.text(alphabet=st.characters(blacklist_categories=()), max_size=300)
SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SURROGATES = ("\ud800", "\udfff", "\udc00\ud83d", "\ud83d")


@pytest.fixture(scope="module")
def runtime(memory_runtime: Runtime) -> Runtime:
    return memory_runtime


def _types(engine: DetectionEngine, text: str, direction: str = "request") -> set[str]:
    return {d.type for d in engine.scan_text(text, direction=direction)}  # type: ignore[arg-type]


@pytest.mark.parametrize("surrogate", SURROGATES)
def test_findings_next_to_a_lone_surrogate_are_kept(surrogate: str) -> None:
    text = f"mail minji.kim@example.com{surrogate} card 4111 1111 1111 1111{surrogate}"
    assert _types(ENGINE, text) == {"email", "card"}
    assert _types(DECODING, text, "response") == {"email", "card"}


def test_a_json_escaped_surrogate_parses_and_is_inspected() -> None:
    text = json.loads('"api_key=\\ud800 ghp_' + "A" * 36 + '"')
    assert "\ud800" in text
    ENGINE.scan_text(text, direction="request")


def test_protect_sync_redacts_around_a_surrogate(runtime: Runtime) -> None:
    result = runtime.protect_sync(
        {"content": "\ud800 write to minji.kim@example.com \udfff"}, direction="request"
    )
    assert "minji.kim@example.com" not in json.dumps(result.payload)
    assert {f.type for f in result.findings} == {"email"}


@SETTINGS
@given(text=ANY_TEXT, direction=st.sampled_from(["request", "response"]))
def test_scan_text_never_raises_on_any_string(text: str, direction: str) -> None:
    for engine in (ENGINE, DECODING):
        for found in engine.scan_text(text, direction=direction):  # type: ignore[arg-type]
            assert text[found.start : found.end] == found.value


@SETTINGS
@given(text=ANY_TEXT, direction=st.sampled_from(["request", "response"]))
def test_protect_sync_never_raises_on_any_string(
    runtime: Runtime, text: str, direction: str
) -> None:
    result = runtime.protect_sync({"content": text}, direction=direction)
    assert isinstance(result.blocked, bool)
