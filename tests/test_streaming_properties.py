# SPDX-License-Identifier: Apache-2.0
"""Property: however a stream is cut into frames and chunks, it is protected as a whole.

For random answers with embedded e-mail addresses and card numbers, random frame boundaries,
random network chunk sizes and LF or CRLF line ends, the text a client reassembles from the
inspected stream equals protecting the whole answer at once; in enforce mode no detected
value survives, and the stream's end frame is the last frame sent.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from haechi.crypto import init_key_file
from haechi.runtime import Runtime, create_runtime
from haechi.streaming import StreamInspector
from tests.stream_fixtures import (
    anthropic_sse,
    chunked,
    collect,
    delta_text,
    ollama_ndjson,
    openai_sse,
    openai_tool_arguments,
    openai_tool_sse,
    read_ndjson,
    read_sse,
    route,
    sse,
)

_EMAILS = st.from_regex(r"[a-z]{1,8}(\.[a-z]{1,6})?@[a-z]{2,8}\.(com|org|net|io)", fullmatch=True)
_CARDS = st.sampled_from(
    ["4111 1111 1111 1111", "4242-4242-4242-4242", "5555555555554444", "378282246310005"]
)
_WORDS = st.text(alphabet="abcdefghijklmnopqrstuvwxyz ,.!?\n", max_size=40)


@st.composite
def _answers(draw: st.DrawFn, *, with_cards: bool) -> str:
    parts = draw(
        st.lists(
            st.one_of(_WORDS, _EMAILS, _CARDS) if with_cards else st.one_of(_WORDS, _EMAILS),
            min_size=1,
            max_size=12,
        )
    )
    return " ".join(parts)


@st.composite
def _cuts(draw: st.DrawFn, text: str) -> list[str]:
    """Cut ``text`` at random places into frame deltas (some of them empty)."""
    points = sorted(draw(st.lists(st.integers(0, len(text)), max_size=max(1, len(text)))))
    bounds = [0, *points, len(text)]
    return [text[a:b] for a, b in itertools.pairwise(bounds)]


_PROTOCOLS: dict[str, Any] = {
    "openai": (
        route("openai-compatible", "/v1/chat/completions"),
        ("choices", 0, "delta", "content"),
    ),
    "anthropic": (route("anthropic", "/v1/messages"), ("delta", "text")),
    "ollama": (route("ollama", "/api/chat"), ("message", "content")),
    # Plain-text data frames on a chat route: the same window covers them.
    "text": (route("openai-compatible", "/v1/chat/completions"), None),
}


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.Runner]:
    with asyncio.Runner() as runner:
        yield runner


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory, loop: asyncio.Runner) -> Iterator[Runtime]:
    state: Path = tmp_path_factory.mktemp("stream-properties")
    init_key_file(state / "keys.json")
    runtime = create_runtime(
        {
            "mode": "enforce",
            "policy": {"mode": "enforce"},
            "keys": {"keyFile": str(state / "keys.json")},
            "audit": {"path": str(state / "audit.jsonl")},
            "tokenVault": {"path": str(state / "vault.json")},
        }
    )
    yield runtime
    loop.run(runtime.aclose())


def _wire(protocol: str, deltas: list[str], newline: str) -> bytes:
    if protocol == "openai":
        return openai_sse(deltas, newline=newline)
    if protocol == "anthropic":
        return anthropic_sse(deltas, newline=newline)
    if protocol == "text":
        return "".join(sse(piece, newline=newline) for piece in [*deltas, "[DONE]"]).encode()
    return ollama_ndjson(deltas, newline=newline)


def _ends(protocol: str, out: bytes) -> bool:
    """Whether the stream's end frame was sent, exactly once and last."""
    if protocol == "ollama":
        done = [value["done"] for value in read_ndjson(out)]
        return done.count(True) == 1 and done[-1] is True
    frames = read_sse(out)
    if protocol in ("openai", "text"):
        ends = [frame.data == "[DONE]" for frame in frames]
    else:
        ends = [frame.meta == ("event: message_stop",) for frame in frames]
    return ends.count(True) == 1 and ends[-1]


def _sent_text(protocol: str, out: bytes) -> str:
    path = _PROTOCOLS[protocol][1]
    if path is None:
        return "".join(f.data for f in read_sse(out) if f.data not in (None, "[DONE]"))
    frames = read_ndjson(out) if protocol == "ollama" else read_sse(out)
    return delta_text(frames, path)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), protocol=st.sampled_from(sorted(_PROTOCOLS)), crlf=st.booleans())
def test_chunking_never_changes_what_is_protected(
    runtime: Runtime, loop: asyncio.Runner, data: st.DataObject, protocol: str, crlf: bool
) -> None:
    text = data.draw(_answers(with_cards=True), label="answer")
    deltas = data.draw(_cuts(text), label="deltas")
    sizes = data.draw(st.lists(st.integers(1, 97), min_size=1, max_size=8), label="chunk sizes")
    newline = "\r\n" if crlf else "\n"
    target = _PROTOCOLS[protocol][0]

    async def run() -> tuple[Any, bytes, StreamInspector]:
        whole = await runtime.protect({"t": text}, direction="response", mode="enforce")
        inspector = StreamInspector(runtime, target, mode="enforce")
        out = await collect(inspector.run(chunked(_wire(protocol, deltas, newline), sizes)))
        return whole, out, inspector

    whole, out, inspector = loop.run(run())
    sent = _sent_text(protocol, out)
    if whole.blocked:
        assert inspector.blocked
        assert not _ends(protocol, out)  # nothing after a block, not even the end frame
    else:
        assert not inspector.blocked
        assert sent == whole.payload["t"]
        assert _ends(protocol, out)
    for finding in runtime.scan({"t": text}, direction="response"):
        value = text[finding.start : finding.end]
        assert value not in sent
        assert value.encode() not in out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_chunking_of_tool_call_arguments_never_changes_what_is_protected(
    runtime: Runtime, loop: asyncio.Runner, data: st.DataObject
) -> None:
    # Two tool calls whose argument pieces interleave: each has a window of its own.
    texts = [data.draw(_answers(with_cards=False), label=f"arguments {n}") for n in (0, 1)]
    calls = {
        n: (f"tool{n}", data.draw(_cuts(text), label=f"pieces {n}")) for n, text in enumerate(texts)
    }
    sizes = data.draw(st.lists(st.integers(1, 97), min_size=1, max_size=8), label="chunk sizes")
    target = _PROTOCOLS["openai"][0]

    async def run() -> tuple[list[Any], bytes]:
        wholes = [
            await runtime.protect({"t": text}, direction="response", mode="enforce")
            for text in texts
        ]
        inspector = StreamInspector(runtime, target, mode="enforce")
        return wholes, await collect(inspector.run(chunked(openai_tool_sse(calls), sizes)))

    wholes, out = loop.run(run())
    sent = openai_tool_arguments(out)
    for number, whole in enumerate(wholes):
        assert sent.get(number, "") == whole.payload["t"]
    assert read_sse(out)[-1].data == "[DONE]"
