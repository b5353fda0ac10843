# SPDX-License-Identifier: Apache-2.0
"""Text read as a reader (or a model) reads it: invisible characters (Unicode format
controls) typed inside a value, and JSON escapes in a string that holds JSON (tool-call
arguments). The value is found, and its span covers what hid it."""

from __future__ import annotations

import asyncio
import json
import sys
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import haechi
from haechi.detect import DetectionEngine, default_rules
from haechi.detect.unicode import _INVISIBLE, as_read

ENGINE = DetectionEngine(default_rules())
CARD = "4111 1111 1111 1111"
EMAIL = "jane.doe@example.com"
#: Invisible characters people paste with text (web pages, PDFs, chat apps), and others that
#: render as nothing: a control character, the combining grapheme joiner, a variation
#: selector, a Hangul filler, the braille blank.
INVISIBLE = [
    *("\u200b", "\u00ad", "\u2060", "\u200c", "\u200d", "\ufeff", "\u202c", "\u2066"),
    *("\x00", "\x1f", "\x85", "\u034f", "\ufe0f", "\U000e0100", "\u3164", "\u2800"),
]
#: Unicode's default-ignorable code points (DerivedCoreProperties.txt), as ranges.
DEFAULT_IGNORABLE = [
    *((0x00AD, 0x00AD), (0x034F, 0x034F), (0x061C, 0x061C), (0x115F, 0x1160)),
    *((0x17B4, 0x17B5), (0x180B, 0x180F), (0x200B, 0x200F), (0x202A, 0x202E)),
    *((0x2060, 0x206F), (0x3164, 0x3164), (0xFE00, 0xFE0F), (0xFEFF, 0xFEFF)),
    *((0xFFA0, 0xFFA0), (0xFFF0, 0xFFF8), (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A)),
    (0xE0000, 0xE0FFF),
]


def _tags(text: str) -> str:
    return "".join(chr(0xE0000 + ord(character)) for character in text)


def test_the_invisible_class_is_what_renders_as_nothing() -> None:
    """Format controls, default-ignorables, controls that are not whitespace, and the
    braille blank; nothing else (a space or a line break separates words)."""
    by_category = {
        point
        for point in range(sys.maxunicode + 1)
        if unicodedata.category(chr(point)) in ("Cf", "Cc") and chr(point) not in "\t\n\v\f\r"
    }
    ignorable = {point for low, high in DEFAULT_IGNORABLE for point in range(low, high + 1)}
    matched = {point for point in range(sys.maxunicode + 1) if _INVISIBLE.match(chr(point))}
    assert matched == by_category | ignorable | {0x2800}
    assert as_read("a\tb\nc\rd e") is None


def test_as_read_drops_controls_reads_tags_and_escapes_and_maps_back() -> None:
    text = "a\u200bb" + _tags("c@") + "\u00add\\u0040e\\ud835\\udfcf"
    seen, starts, ends = as_read(text) or ("", (), ())
    assert seen == "abc@d@e\U0001d7cf"
    assert [text[a:b] for a, b in zip(starts, ends, strict=True)] == [
        "a",
        "b",
        chr(0xE0063),
        chr(0xE0040),
        "d",
        "\\u0040",
        "e",
        "\\ud835\\udfcf",
    ]
    assert as_read("plain ascii, a path C:\\users\\x") is None
    assert as_read("caf\u00e9 without controls") is None


@settings(max_examples=60, deadline=None)
@given(
    at=st.lists(st.integers(min_value=1, max_value=len(CARD) - 1), min_size=1, max_size=4),
    chars=st.lists(st.sampled_from(INVISIBLE), min_size=4, max_size=4),
)
def test_a_card_with_invisible_characters_inside_is_a_card(at: list[int], chars: list[str]) -> None:
    value = CARD
    for position, char in sorted(zip(at, chars, strict=False), reverse=True):
        value = value[:position] + char + value[position:]
    text = f"pay with {value} today"
    (found,) = [d for d in ENGINE.scan_text(text, direction="request") if d.type == "card"]
    assert found.hard_block
    assert text[found.start : found.end] == value


@settings(max_examples=60, deadline=None)
@given(
    at=st.lists(st.integers(min_value=1, max_value=len(EMAIL) - 1), min_size=1, max_size=4),
    chars=st.lists(st.sampled_from(INVISIBLE), min_size=4, max_size=4),
)
def test_an_address_with_invisible_characters_inside_is_found_whole(
    at: list[int], chars: list[str]
) -> None:
    value = EMAIL
    for position, char in sorted(zip(at, chars, strict=False), reverse=True):
        value = value[:position] + char + value[position:]
    text = f"mail {value} now"
    found = [d for d in ENGINE.scan_text(text, direction="response") if d.type == "email"]
    assert [(d.start, d.end) for d in found] == [(5, 5 + len(value))]


def test_marks_stacked_on_ascii_hide_nothing_and_a_script_keeps_its_marks() -> None:
    """A combining accent on a digit or a letter of a value decorates what a model still
    reads; on a letter of another script (Greek here) a mark is its spelling."""
    text = "card 4111 1111\u0300 1111 1111 to jane.doe\u0301\u0302@example.com"
    found = {d.type: text[d.start : d.end] for d in ENGINE.scan_text(text, direction="request")}
    assert found == {
        "card": "4111 1111\u0300 1111 1111",
        "email": "jane.doe\u0301\u0302@example.com",
    }
    seen, _starts, _ends = as_read("\u03b1\u0301\u200bb") or ("", (), ())
    assert seen == "\u03b1\u0301b"


def test_an_address_in_tag_characters_is_found() -> None:
    text = f"see {_tags(EMAIL)} ok"
    (found,) = ENGINE.scan_text(text, direction="request")
    assert found.type == "email"
    assert text[found.start : found.end] == _tags(EMAIL)


def test_text_with_invisible_characters_and_nothing_else_has_no_findings() -> None:
    assert ENGINE.scan_text("hello\u200b world\u00ad and \u2060 friends", direction="request") == []


def _escaped(document: object) -> str:
    """JSON as Python's encoder writes it by default: every non-ASCII character escaped."""
    return json.dumps(document)


def test_values_in_escaped_json_inside_a_string_are_found() -> None:
    card = "4111\u00a01111\u00a01111\u00a01111"  # NBSP between the groups
    phone = "\uff10\uff11\uff10-1234-5678"  # full-width digits
    arguments = _escaped({"card": card, "to": "jane.doe\uff20example.com", "phone": phone})
    assert "\\u00a0" in arguments
    found = {
        d.type: arguments[d.start : d.end]
        for d in ENGINE.scan_text(arguments, direction="response")
    }
    assert found["card"] == json.dumps(card)[1:-1]
    assert found["email"] == json.dumps("jane.doe\uff20example.com")[1:-1]
    assert found["phone"] == json.dumps(phone)[1:-1]


@pytest.mark.parametrize("levels", [2, 3])
def test_values_in_json_nested_in_strings_several_levels_down_are_found(levels: int) -> None:
    # Each level of JSON inside a string doubles the backslash of an escape: two levels
    # down, "\uff20" is written "\\uff20", which a reader decoding twice reads as "@".
    card = "4111\u00a01111\u00a01111\u00a01111"
    document: object = {"to": "jane.doe\uff20example.com", "card": card}
    for _ in range(levels):
        document = _escaped({"payload": document})
    assert isinstance(document, str)
    assert "\\" * (2 ** (levels - 1)) + "u00a0" in document
    found = {d.type: d for d in ENGINE.scan_text(document, direction="response")}
    assert found["card"].hard_block
    assert document[found["email"].start : found["email"].end].startswith("jane.doe\\")
    assert document[found["email"].end - len("example.com") : found["email"].end] == "example.com"


def test_a_run_of_backslashes_before_u_reads_as_one_escape() -> None:
    seen, starts, ends = as_read("a\\\\u0040b") or ("", (), ())
    assert seen == "a@b"
    assert (starts[1], ends[1]) == (1, 8)


def test_escaped_tool_call_arguments_stay_json_with_the_value_redacted() -> None:
    runtime = haechi.create_runtime(
        {"mode": "enforce", "audit": {"sink": "memory"}, "tokenVault": {"provider": "memory"}}
    )
    arguments = _escaped({"to": "jane.doe\u0040example.com", "note": "caf\u00e9"})
    arguments = arguments.replace("@", "\\u0040")
    answer = {"choices": [{"message": {"tool_calls": [{"function": {"arguments": arguments}}]}}]}
    result = asyncio.run(runtime.protect(answer, direction="response"))
    sent = result.payload["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"]
    assert json.loads(sent) == {"to": "[REDACTED:email]", "note": "caf\u00e9"}
