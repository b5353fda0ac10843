# SPDX-License-Identifier: Apache-2.0
"""Values restored into JSON source, escaped once for every string they lie in.

A marker can sit in JSON that is itself in a JSON string, as deep as a tool's arguments
nest documents: decoding each level must give back exactly the value, whatever it holds,
and a marker whose depth cannot be told (no string at all, after a broken escape) is left
as it is.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from haechi._markers import MarkerRestorer, json_string_content
from haechi._string_nesting import StringNesting
from haechi.errors import LimitError

TOKEN = "tok_pw_0123456789abcdef"
MARKER = f"[TOKEN:{TOKEN}]"

#: How a level holds the string below it: as a member, an array item or a key.
_SHAPES = st.sampled_from(["member", "item", "key"])


def _wrap(inner: str, shape: str) -> Any:
    if shape == "member":
        return {"n": 1, "v": inner}
    if shape == "item":
        return [True, inner]
    return {inner: None}


def _unwrap(document: Any, shape: str) -> str:
    if shape == "member":
        return str(document["v"])
    if shape == "item":
        return str(document[1])
    (key,) = document
    return str(key)


def _nested(shapes: list[str], ascii_levels: list[bool]) -> str:
    """JSON source with :data:`MARKER` as many strings deep as ``shapes`` has levels."""
    text = MARKER
    for shape, ascii_only in zip(shapes, ascii_levels, strict=True):
        text = json.dumps(_wrap(text, shape), ensure_ascii=ascii_only)
    return text


def _decoded(text: str, shapes: list[str]) -> str:
    for shape in reversed(shapes):
        text = _unwrap(json.loads(text), shape)
    return text


_LEVELS = st.integers(min_value=1, max_value=5).flatmap(
    lambda depth: st.tuples(
        st.lists(_SHAPES, min_size=depth, max_size=depth),
        st.lists(st.booleans(), min_size=depth, max_size=depth),
    )
)


@settings(max_examples=200, deadline=None)
@given(value=st.text(), levels=_LEVELS, cuts=st.lists(st.integers(0, 400), max_size=6))
def test_every_level_decodes_back_to_the_value(
    value: str, levels: tuple[list[str], list[bool]], cuts: list[int]
) -> None:
    shapes, ascii_levels = levels
    source = _nested(shapes, ascii_levels)
    # Whole, as a string of an answer...
    restorer = MarkerRestorer({TOKEN: value}, 10**9)
    restored = restorer.restore_document({"arguments": source}, 64)["arguments"]
    assert _decoded(restored, shapes) == value
    # ...and read in pieces cut anywhere but inside the marker (a stream holds those back).
    marker_at = source.index(MARKER)
    bounds = sorted(
        {c for c in cuts if c < len(source) and not marker_at < c < marker_at + len(MARKER)}
    )
    nesting = StringNesting()
    pieces = [source[a:b] for a, b in zip([0, *bounds], [*bounds, len(source)], strict=True)]
    streamed = "".join(
        restorer.restore_source(piece, nesting, json_string_content) for piece in pieces
    )
    assert _decoded(streamed, shapes) == value


@pytest.mark.parametrize(
    "source",
    [
        f'{{"a": {MARKER}}}',  # structure, not a string: the value would add members
        f'[ {MARKER}, "x"]',
        f'{{"a": "\\q {MARKER}"}}',  # after an escape JSON does not have
        f'{{"a": "{{\\"b\\": {MARKER}}}"}}',  # structure of the JSON in a string
        f'{{"a": "[ {MARKER}]"}}',  # "[" and then the marker: an array in a string
    ],
)
def test_a_marker_whose_depth_cannot_be_told_is_kept(source: str) -> None:
    restorer = MarkerRestorer({TOKEN: 'x", "admin": true, "y": "'}, 10**6)
    assert restorer.restore_source(source, StringNesting(), json_string_content) == source
    assert restorer.restore_document({"s": source}, 64) == {"s": source}


def test_a_token_kept_once_is_then_restored_nowhere_when_asked() -> None:
    restorer = MarkerRestorer({TOKEN: "v"}, 10**6)
    kept = f"{{{MARKER}"
    assert restorer.restore_source(kept, StringNesting(), json_string_content) == kept
    assert restorer.restore(MARKER) == "v"
    restorer.restore_source(kept, StringNesting(), json_string_content, forget_unplaced=True)
    assert restorer.restore(MARKER) == MARKER


def test_prose_in_a_string_of_the_source_takes_the_value_as_text() -> None:
    restorer = MarkerRestorer({TOKEN: 'a"b\\c'}, 10**6)
    source = json.dumps({"note": f"  {MARKER} and {{not json}}", "n": json.dumps([MARKER])})
    restored = json.loads(restorer.restore_source(source, StringNesting(), json_string_content))
    assert restored["note"] == '  a"b\\c and {not json}'
    assert json.loads(restored["n"]) == ['a"b\\c']


def test_escaping_deep_down_stays_within_the_growth_bound() -> None:
    # Each level doubles a backslash: twenty levels would make a megabyte of one of them.
    source = _nested(["member"] * 20, [False] * 20)
    restorer = MarkerRestorer({TOKEN: "\\" * 64}, 4096)
    with pytest.raises(LimitError) as caught:
        restorer.restore_source(source, StringNesting(), json_string_content)
    assert caught.value.error_code == "haechi_restored_too_large"


def _fastest(work: Callable[[], object]) -> float:
    """The shortest of three runs of ``work``, in seconds."""
    timings = []
    for _ in range(3):
        start = time.perf_counter()
        work()
        timings.append(time.perf_counter() - start)
    return min(timings)


def test_escape_packed_source_is_followed_at_the_pace_of_decoding_it() -> None:
    """The gateway follows every streamed tool call's arguments, marker or not, on its
    event loop, and an upstream chooses how many escapes they hold: followed an escaped
    character at a time, 800 KB took eighty times as long as decoding every level of them
    (half a second), more than the rest of the stream's inspection."""
    source = json.dumps({"p": '\\"' * 20000 + 'x"y\\z' * 5000})
    for _ in range(3):
        source = json.dumps({"q": source})

    def decode_every_level() -> None:
        document = json.loads(source)
        while "q" in document:
            document = json.loads(document["q"])

    followed = _fastest(lambda: StringNesting().feed(source))
    assert followed < 25 * _fastest(decode_every_level)
