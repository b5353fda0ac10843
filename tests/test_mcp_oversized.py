# SPDX-License-Identifier: Apache-2.0
"""Reading the ends of a message line too long to be read whole (``haechi.mcp._oversized``)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from haechi.mcp._io import LineReader, LineTooLong
from haechi.mcp._oversized import line_ends

#: Bytes kept at each end in these tests (the reader keeps 64 KiB).
KEPT = 120
BIG = "b" * (3 * KEPT)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**53), 2**53),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
)
names = st.text(max_size=6)
#: A large member's text: quotes, backslashes and braces meant to look like members.
large_texts = st.lists(
    st.sampled_from(['"', "\\", "}", "{", ",", ":", '"id":', "9", "x", " ", "é", "\n"]),
    min_size=3 * KEPT,
    max_size=6 * KEPT,
).map("".join)


def ends(line: bytes) -> Any:
    return line_ends(line[:KEPT], line[-KEPT:])


@given(
    before=st.lists(st.tuples(names, scalars), max_size=4),
    after=st.lists(st.tuples(names, scalars), max_size=4),
    large=st.one_of(large_texts, st.lists(large_texts, max_size=2).map(lambda t: {"t": t})),
    ensure_ascii=st.booleans(),
)
def test_a_member_read_at_an_end_is_the_member_of_the_object(
    before: list[tuple[str, Any]], after: list[tuple[str, Any]], large: Any, ensure_ascii: bool
) -> None:
    """Whatever the large member holds, a member read is one of the object's own members
    with its value (never one inside the large member), the last of its name."""
    document = dict([*before, ("large", large), *after])
    line = json.dumps(document, ensure_ascii=ensure_ascii).encode()
    for name, value in ends(line).members.items():
        assert name in document
        assert json.dumps(document[name]) == json.dumps(value)


@given(message_id=st.one_of(st.integers(-(2**53), 2**53), st.text(max_size=6)))
def test_the_id_is_read_before_or_after_the_large_member(message_id: Any) -> None:
    first = {"jsonrpc": "2.0", "id": message_id, "result": {"text": BIG}}
    last = {"result": {"text": BIG}, "jsonrpc": "2.0", "id": message_id}
    for document in (first, last):
        line = json.dumps(document, separators=(",", ":")).encode()
        read = ends(line)
        assert read.members["id"] == message_id
        assert "result" in read.names
        assert "method" not in read.names


def test_a_quote_the_kept_tail_starts_with_may_be_escaped() -> None:
    """The tail can be cut between a backslash and the quote it escapes: that quote
    opens no name."""
    line = json.dumps({"large": BIG, 'x"ab': 1}).encode()
    tail = line[line.index(b'"ab"') :]
    assert tail.startswith(b'"ab": 1}')
    assert line_ends(line[:KEPT], tail).members == {}


def test_the_name_of_the_member_cut_off_is_known() -> None:
    line = json.dumps({"id": 3, "method": "tools/call", "params": {"t": BIG}}).encode()
    read = ends(line)
    assert read.members == {"id": 3, "method": "tools/call"}
    assert read.names == {"id", "method", "params"}


@pytest.mark.parametrize(
    "line",
    [
        # An id inside a nested object at the end is not the object's.
        b'{"result":{"t":"' + BIG.encode() + b'","id":5}}',
        # Inside the large string, escaped.
        b'{"result":"' + BIG.encode() + b'\\",\\"id\\":5}"}',
        # Not an object, or not JSON at all.
        b'["' + BIG.encode() + b'",5]',
        BIG.encode(),
        b"",
    ],
)
def test_nothing_is_read_where_nothing_can_be_told(line: bytes) -> None:
    assert "id" not in ends(line).members


@pytest.mark.anyio
async def test_the_reader_keeps_both_ends_of_a_skipped_line() -> None:
    reader = asyncio.StreamReader(limit=64)
    line = b'{"id":1,"x":"' + b"a" * 200_000 + b'","last":2}'
    reader.feed_data(line + b"\r\nnext\n")
    reader.feed_eof()
    lines = LineReader.from_stream(reader)
    with pytest.raises(LineTooLong) as raised:
        await lines.readline()
    head, tail = raised.value.head, raised.value.tail
    assert line.startswith(head)
    assert len(head) > 8
    assert line.endswith(tail)
    assert len(tail) > 60_000
    assert line_ends(head, tail).members == {"id": 1, "last": 2}
    assert await lines.readline() == b"next"
