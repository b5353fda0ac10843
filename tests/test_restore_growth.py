# SPDX-License-Identifier: Apache-2.0
"""Restoring markers grows an answer by at most ``responseProtection.maxBytes`` characters.

A marker is shorter than a long value, and the upstream decides how often an answer repeats
one: without a bound, restoring an answer made of one marker could build a string hundreds
of times its size.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from haechi._markers import MarkerRestorer
from haechi._string_nesting import StringNesting
from haechi.errors import LimitError
from tests.upstream_server import Reply, gateway_in_front

#: A long address: restored, it is about 130 characters longer than its marker.
LONG_EMAIL = f"{'a' * 60}@{'b' * 60}.{'c' * 60}.com"
MAX_BYTES = 20_000
#: Markers whose restoration stays under the bound, and markers that go past it.
FEW, MANY = 3, 260


def chat(text: str, **extra: Any) -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "user", "content": text}], **extra}


def test_growth_is_counted_over_every_text_restored() -> None:
    restorer = MarkerRestorer({"tok_a": "x" * 30, "tok_b": "y"}, max_growth=40)
    assert restorer.restore("[TOKEN:tok_a] [TOKEN:tok_c]") == "x" * 30 + " [TOKEN:tok_c]"
    # A value shorter than its marker gives characters back.
    assert restorer.restore("[TOKEN:tok_b]") == "y"
    # A value escaped within JSON source is counted as written.
    restored = restorer.restore_source('"[TOKEN:tok_a]"', StringNesting(), str.upper)
    assert restored == '"' + "X" * 30 + '"'
    with pytest.raises(LimitError) as raised:
        restorer.restore("[TOKEN:tok_a]" * 10)
    assert (raised.value.status_code, raised.value.error_code) == (502, "haechi_restored_too_large")


def deterministic_gateway(tmp_path: Path) -> Any:
    config = {
        "policy": {"actions": {"email": "tokenize"}},
        "responseProtection": {"enabled": True, "maxBytes": MAX_BYTES},
        "streaming": {"requestMode": "inspect"},
        "tokenVault": {"detokenizeResponses": True, "deterministic": True},
    }
    return gateway_in_front(tmp_path, config)


def marker_of(gateway: Any) -> str:
    """The marker the upstream saw for :data:`LONG_EMAIL` (the same on every request)."""
    response = httpx.post(f"{gateway.url}/v1/chat/completions", json=chat(LONG_EMAIL))
    assert response.status_code == 200
    seen: str = gateway.upstream.last.json()["messages"][0]["content"]
    assert seen.startswith("[TOKEN:")
    # MANY markers fit in an answer under the bound; restored, they grow past it.
    assert len(seen) * MANY + 1000 < MAX_BYTES < (len(LONG_EMAIL) - len(seen)) * MANY
    return seen


def test_an_answer_repeating_a_marker_past_the_bound_is_refused(tmp_path: Path) -> None:
    with deterministic_gateway(tmp_path) as gateway:
        marker = marker_of(gateway)
        gateway.upstream.queue(Reply(text=" ".join([marker] * FEW)))
        fine = httpx.post(f"{gateway.url}/v1/chat/completions", json=chat(LONG_EMAIL))
        assert fine.json()["choices"][0]["message"]["content"].count(LONG_EMAIL) == FEW
        gateway.upstream.queue(Reply(text=" ".join([marker] * MANY)))
        refused = httpx.post(f"{gateway.url}/v1/chat/completions", json=chat(LONG_EMAIL))
        assert refused.status_code == 502
        assert refused.json()["reason"] == "response_restored_too_large"
        assert LONG_EMAIL not in refused.text
        decisions = [(r.get("decision"), r.get("reason")) for r in gateway.audit()]
        assert ("response_unprotected_blocked", "response_restored_too_large") in decisions


def test_a_stream_repeating_a_marker_past_the_bound_is_stopped(tmp_path: Path) -> None:
    with deterministic_gateway(tmp_path) as gateway:
        marker = marker_of(gateway)
        gateway.upstream.queue(Reply(chunks=[marker + " "] * MANY))
        response = httpx.post(
            f"{gateway.url}/v1/chat/completions", json=chat(LONG_EMAIL, stream=True)
        )
        frames = [line for line in response.text.splitlines() if line.startswith("data: {")]
        restored = "".join(
            json.loads(frame[6:])["choices"][0]["delta"].get("content") or "" for frame in frames
        )
        assert restored.count(LONG_EMAIL) < MANY
        assert len(restored) < MAX_BYTES + len(marker) * MANY
        assert "data: [DONE]" not in response.text
        reasons = [r.get("reason") for r in gateway.audit()]
        assert "stream_restored_too_large" in reasons
