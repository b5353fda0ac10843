# SPDX-License-Identifier: Apache-2.0
"""A stream whose inspection cannot be set up is audited as failed, not as left early.

``StreamInspector.run`` builds the stream's protector first; when that fails (a profile the
runtime does not know), nothing of the stream is inspected or sent and the error goes to the
caller. Its one audit event said ``stream_inspected`` with the reason
``stream_closed_early``, as if a client had gone away from an inspected stream.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from haechi.errors import ConfigError
from haechi.runtime import Runtime
from haechi.streaming import StreamInspector
from tests.stream_fixtures import chunked, collect, openai_sse, route

pytestmark = pytest.mark.anyio


@pytest.fixture
def runtime(enforcing_runtime: Runtime) -> Runtime:
    return enforcing_runtime


def _stream_events() -> list[dict[str, Any]]:
    lines = Path(".haechi/audit.jsonl").read_text().splitlines()
    events = [json.loads(line) for line in lines if line]
    return [e for e in events if e["operation"].startswith("response-stream:")]


async def test_an_unknown_profile_is_audited_as_a_failed_stream(runtime: Runtime) -> None:
    chat = route("openai-compatible", "/v1/chat/completions")
    inspector = StreamInspector(runtime, chat, mode="enforce", profile="no-such-profile")
    closed = False

    async def source() -> AsyncIterator[bytes]:
        nonlocal closed
        try:
            async for chunk in chunked(openai_sse(["hello"]), 64):
                yield chunk
        finally:
            closed = True

    body = source()
    await anext(body)  # started, so that closing it runs its finally
    with pytest.raises(ConfigError):
        await collect(inspector.run(body))
    assert closed
    assert inspector.blocked
    assert inspector.reason == "stream_inspection_error"
    (event,) = _stream_events()
    assert event["decision"] == "stream_blocked"
    assert event["reason"] == "stream_inspection_error"
    assert runtime.metrics is not None
    metrics = bytes(runtime.metrics.render()[0]).decode()
    assert 'decision="stream_blocked"' in metrics
    assert 'decision="stream_inspected"' not in metrics
