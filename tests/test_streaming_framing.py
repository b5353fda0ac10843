# SPDX-License-Identifier: Apache-2.0
"""SSE and NDJSON framing: line ends, chunking, leniency, limits, normal form."""

from __future__ import annotations

import sys
from types import FrameType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from haechi.errors import LimitError
from haechi.streaming import Frame, NdjsonParser, SseParser, encode_ndjson, encode_sse


def _sse_frames(wire: bytes, *, step: int = 0, limit: int = 1 << 20) -> list[Frame]:
    parser = SseParser(limit)
    frames: list[Frame] = []
    if step:
        for index in range(0, len(wire), step):
            frames.extend(parser.feed(wire[index : index + step]))
    else:
        frames.extend(parser.feed(wire))
    frames.extend(parser.finish())
    return frames


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
@pytest.mark.parametrize("step", [0, 1, 2, 3])
def test_sse_line_ends_and_chunking_give_the_same_frames(newline: str, step: int) -> None:
    text = newline.join(
        [
            ": keep-alive",
            "",
            "event: message",
            "id: 7",
            'data: {"a": "é€😀"}',
            "",
            "data: one",
            "data:two",
            "data",
            "",
            "",
        ]
    )
    frames = _sse_frames(text.encode(), step=step)
    assert frames == [
        Frame((": keep-alive",), None),
        Frame(("event: message", "id: 7"), '{"a": "é€😀"}'),
        Frame((), "one\ntwo\n"),
    ]


def test_sse_lenient_indented_data_is_data_and_written_back_normalised() -> None:
    frames = _sse_frames(b" \tdata: secret\n  event:  x\n   \n\n")
    assert frames == [Frame(("event:  x",), "secret")]
    assert encode_sse(frames[0].meta, frames[0].data) == "event:  x\ndata: secret\n\n"


@pytest.mark.parametrize("space", ["\u00a0", "\u3000", "\u2003", "\ufeff", "\x1f", " \u00a0\t"])
def test_sse_data_indented_with_any_white_space_is_data(space: str) -> None:
    # go-openai trims every line with bytes.TrimSpace (Unicode spaces), JavaScript readers
    # with trim() (a byte order mark too): such a line is data to them.
    frames = _sse_frames(f"{space}data: secret\n{space}event: x\n\n".encode())
    assert frames == [Frame(("event: x",), "secret")]


@pytest.mark.parametrize("parser", [SseParser(1 << 20), NdjsonParser(1 << 20)])
def test_a_line_trickled_a_byte_at_a_time_is_not_split_again_for_every_byte(
    parser: SseParser | NdjsonParser,
) -> None:
    """The work a chunk costs follows the chunk, not the line being received: split again
    with all of that line on every chunk, a line of ``maxBytes`` that a hostile upstream
    trickles in a byte at a time would cost time growing with the square of its length."""
    splits = 0

    def count(_frame: FrameType, event: str, arg: Any) -> None:
        nonlocal splits
        if event == "c_call" and getattr(arg, "__name__", "") == "splitlines":
            splits += 1

    sys.setprofile(count)
    try:
        frames = parser.feed(b"data: ")
        for _ in range(5000):
            frames += parser.feed(b"x")
        frames += parser.feed(b"\n\n")
    finally:
        sys.setprofile(None)
    assert frames == [
        Frame((), "x" * 5000) if isinstance(parser, SseParser) else Frame((), "data: " + "x" * 5000)
    ]
    assert splits <= 2


def test_sse_bom_is_dropped_even_when_split() -> None:
    wire = b"\xef\xbb\xbfdata: x\n\n"
    assert _sse_frames(wire, step=1) == [Frame((), "x")]
    assert _sse_frames(wire) == [Frame((), "x")]


def test_sse_crlf_split_between_chunks_is_one_line_end() -> None:
    parser = SseParser(1024)
    assert parser.feed(b"data: a\r") == []
    assert parser.feed(b"\n\r") == [Frame((), "a")]
    assert parser.feed(b"\ndata: b\r\n\r\n") == [Frame((), "b")]


def test_sse_last_frame_without_blank_line_is_returned_at_the_end() -> None:
    parser = SseParser(1024)
    assert parser.feed(b"data: tail") == []
    assert parser.finish() == [Frame((), "tail")]


def test_sse_frame_over_the_limit_raises() -> None:
    parser = SseParser(32)
    assert parser.feed(b"data: short\n\n") == [Frame((), "short")]
    parser.feed(b"data: " + b"x" * 20 + b"\n")
    with pytest.raises(LimitError) as caught:
        parser.feed(b"data: " + b"y" * 20 + b"\n")
    assert caught.value.error_code == "haechi_stream_frame_too_large"


def test_sse_unterminated_line_over_the_limit_raises() -> None:
    parser = SseParser(64)
    for _ in range(4):
        assert parser.feed(b"x" * 16) == []
    with pytest.raises(LimitError):
        parser.feed(b"x")


def test_invalid_utf8_raises() -> None:
    with pytest.raises(UnicodeDecodeError):
        _sse_frames(b"data: \xff\xfe\n\n")


def test_encode_sse_writes_one_data_line_per_text_line() -> None:
    assert (
        encode_sse(("event: e",), "a\r\nb\rc\n") == "event: e\ndata: a\ndata: b\ndata: c\ndata:\n\n"
    )
    assert encode_sse((": ping",), None) == ": ping\n\n"


@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"])
def test_ndjson_lines(newline: bytes) -> None:
    wire = newline.join([b'{"a": 1}', b"", b"  ", b"text \xc3\xa9", b'{"b": 2}'])
    for step in (1, 2, len(wire)):
        parser = NdjsonParser(1024)
        frames: list[Frame] = []
        for index in range(0, len(wire), step):
            frames.extend(parser.feed(wire[index : index + step]))
        frames.extend(parser.finish())
        assert [frame.data for frame in frames] == ['{"a": 1}', "text é", '{"b": 2}']


def test_ndjson_line_over_the_limit_raises() -> None:
    parser = NdjsonParser(8)
    with pytest.raises(LimitError):
        parser.feed(b"0123456789")
    with pytest.raises(LimitError):
        NdjsonParser(8).feed(b"0123456789\n")


def test_encode_ndjson_never_writes_a_blank_line() -> None:
    assert encode_ndjson("") == ""
    assert encode_ndjson("a\n\nb") == "a\nb\n"


_FIELD_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"), max_size=12
)


@given(
    events=st.lists(
        st.tuples(
            st.lists(_FIELD_TEXT, min_size=1, max_size=3), st.sampled_from(["\n", "\r\n", "\r"])
        ),
        min_size=1,
        max_size=5,
    ),
    cuts=st.lists(st.integers(min_value=1, max_value=7), max_size=40),
)
def test_sse_data_round_trips_through_any_chunking(
    events: list[tuple[list[str], str]], cuts: list[int]
) -> None:
    wire = b""
    for lines, newline in events:
        body = newline.join(f"data: {line}" for line in lines)
        wire += (body + newline + newline).encode()
    parser = SseParser(1 << 16)
    frames: list[Frame] = []
    position = 0
    for cut in cuts:
        frames.extend(parser.feed(wire[position : position + cut]))
        position += cut
    frames.extend(parser.feed(wire[position:]))
    frames.extend(parser.finish())
    assert [frame.data for frame in frames] == ["\n".join(lines) for lines, _ in events]


def test_a_cr_inside_a_chunk_does_not_swallow_the_next_chunks_lf() -> None:
    # Found by the round-trip property: "\r" ends a line mid-chunk, the chunk ends inside the
    # next line, and the following chunk starts with that line's own "\n".
    wire = b"data: 0\r\rdata: \ndata: \n\n"
    parser = SseParser(1 << 16)
    frames = [*parser.feed(wire[:7]), *parser.feed(wire[7:15]), *parser.feed(wire[15:])]
    frames.extend(parser.finish())
    assert [frame.data for frame in frames] == ["0", "\n"]
