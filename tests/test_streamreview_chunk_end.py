# SPDX-License-Identifier: Apache-2.0
"""What follows a stream's end frame, or a frame that cannot be read, in one network chunk.

Whether bytes arrive in one network chunk or in several is the transport's choice, so it
must not change what a client gets: bytes after the end frame (``[DONE]``, Ollama's
``done: true``) are dropped unread, and the frames before one that is too large or not
UTF-8 are sent, however the upstream's bytes were chunked.
"""

from __future__ import annotations

from typing import Any

import pytest

from haechi.runtime import Runtime
from haechi.streaming import StreamInspector
from tests.stream_fixtures import chunked, collect, ollama_ndjson, openai_sse, route

pytestmark = pytest.mark.anyio

CHAT = route("openai-compatible", "/v1/chat/completions")
OLLAMA = route("ollama", "/api/chat")
STREAMS = {
    "sse": (CHAT, openai_sse(["Hello ", "world"])),
    "ndjson": (OLLAMA, ollama_ndjson(["Hello ", "world"])),
}
#: Bytes no frame can be read from: invalid UTF-8, and a line past responseProtection.maxBytes.
JUNK = {"invalid-utf8": b"\xff\xfe\n\n", "too-large": b"x" * (2 << 20)}


async def _sent(runtime: Runtime, target: Any, wire: bytes, sizes: list[int]) -> tuple[bytes, Any]:
    inspector = StreamInspector(runtime, target, mode="enforce")
    return await collect(inspector.run(chunked(wire, sizes))), inspector.reason


@pytest.mark.parametrize("junk", JUNK.values(), ids=JUNK.keys())
@pytest.mark.parametrize("stream", STREAMS.values(), ids=STREAMS.keys())
async def test_bytes_after_the_end_frame_in_its_chunk_are_dropped_unread(
    memory_runtime: Runtime, stream: tuple[Any, bytes], junk: bytes
) -> None:
    target, wire = stream
    alone = await _sent(memory_runtime, target, wire, [len(wire)])
    assert alone[1] == "stream_inspected"
    joined = await _sent(memory_runtime, target, wire + junk, [len(wire) + len(junk)])
    assert joined == alone


@pytest.mark.parametrize("junk", JUNK.values(), ids=JUNK.keys())
async def test_frames_before_an_unreadable_frame_in_their_chunk_are_sent(
    memory_runtime: Runtime, junk: bytes
) -> None:
    target, wire = STREAMS["sse"]
    wire = wire.removesuffix(b"data: [DONE]\n\n")
    apart = await _sent(memory_runtime, target, wire + junk, [len(wire), len(junk)])
    assert apart[0].endswith(b'"finish_reason":"stop"}]}\n\n')
    assert apart[1] in ("stream_invalid_utf8", "stream_frame_too_large")
    assert await _sent(memory_runtime, target, wire + junk, [len(wire) + len(junk)]) == apart
