# SPDX-License-Identifier: Apache-2.0
"""The JSON walk: which leaves and keys are inspected, path texts, and the depth guard."""

from __future__ import annotations

import dataclasses
import hashlib
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from haechi.errors import LimitError
from haechi.models import Entry
from haechi.payload import (
    DEFAULT_MAX_NESTING_DEPTH,
    PathTexts,
    collect_entries,
    number_text,
    path_text,
)


def _nest(depth: int, leaf: Any = "x") -> Any:
    """A chain of ``depth`` nested lists around ``leaf`` (built without recursion)."""
    value = leaf
    for _ in range(depth):
        value = [value]
    return value


def test_strings_numbers_and_keys_are_entries_in_document_order() -> None:
    payload = {"a": "one", "b": [1, 2.5, True, None, {"c": "two"}], "d": math.nan}
    entries = collect_entries(payload)
    assert entries == [
        Entry(("a",), "a", "key"),
        Entry(("a",), "one", "value"),
        Entry(("b",), "b", "key"),
        Entry(("b", 0), "1", "number"),
        Entry(("b", 1), "2.5", "number"),
        Entry(("b", 4, "c"), "c", "key"),
        Entry(("b", 4, "c"), "two", "value"),
        Entry(("d",), "d", "key"),
    ]


def test_numbers_keep_every_digit_and_integral_floats_read_as_integers() -> None:
    assert number_text(4111111111111111) == "4111111111111111"
    assert number_text(12345678901234567890) == "12345678901234567890"
    assert number_text(4111111111111111.0) == "4111111111111111"
    assert number_text(math.inf) is None
    assert number_text(-math.inf) is None


def test_walked_entries_are_the_entries_the_constructor_builds() -> None:
    # The walk fills an Entry through its slots; it must be the same object in every way.
    assert [field.name for field in dataclasses.fields(Entry)] == ["path", "value", "kind"]
    assert not hasattr(Entry, "__post_init__")
    payload = {
        "k": "hidden-text",
        "list": [{"x": "y"}],
        "str": StrSubclass("s"),
        StrSubclass("sk"): 1,
    }
    for entry in collect_entries(payload):
        rebuilt = Entry(entry.path, entry.value, entry.kind)
        assert entry == rebuilt
        assert hash(entry) == hash(rebuilt)
        assert repr(entry) == repr(rebuilt)
        assert "hidden-text" not in repr(entry)
        with pytest.raises(dataclasses.FrozenInstanceError):
            entry.value = "changed"  # type: ignore[misc]
    assert [entry.kind for entry in collect_entries(payload)] == [
        "key",
        "value",
        "key",
        "key",
        "value",
        "key",
        "value",
        "key",
        "number",
    ]


class StrSubclass(str):
    """A string subclass: JSON-valid, but not the plain ``str`` the walk's fast path takes."""


@pytest.mark.parametrize("root", ["mail a@b.co", 4111111111111111])
def test_a_bare_primitive_root_is_one_entry_with_an_empty_path(root: Any) -> None:
    (entry,) = collect_entries(root)
    assert entry.path == ()
    assert path_text(entry.path) == ""


@pytest.mark.parametrize("root", [None, True, False, math.nan])
def test_roots_without_content_have_no_entries(root: Any) -> None:
    assert collect_entries(root) == []


@pytest.mark.parametrize("bad", [{"a": {1, 2}}, {1: "x"}, ("tuple",), b"bytes"])
def test_values_that_are_not_json_are_refused_rather_than_skipped(bad: Any) -> None:
    with pytest.raises(TypeError):
        collect_entries(bad)


def test_path_text_hashes_keys_and_keeps_indices() -> None:
    assert path_text(("messages", 0, "content")) == "key_f5cccfb73751[0].key_ed7002b439e9"
    assert path_text((0, 1)) == "[0][1]"
    # Keys outside the protocol vocabulary (here one that is itself an e-mail address) are
    # hashed the same way, on every use.
    hashed = hashlib.sha256(b"minji.kim@example.com").hexdigest()[:12]
    for _ in range(2):
        assert path_text(("minji.kim@example.com", 2)) == f"key_{hashed}[2]"
    assert path_text(()) == ""


@given(
    st.lists(
        st.lists(st.one_of(st.text(max_size=5), st.integers(0, 9)), max_size=6),
        max_size=12,
    )
)
def test_memoised_path_texts_equal_the_plain_function(paths: list[list[str | int]]) -> None:
    texts = PathTexts()
    for path in paths:
        assert texts(tuple(path)) == path_text(path)


def test_five_thousand_levels_are_refused_with_413() -> None:
    with pytest.raises(LimitError) as caught:
        collect_entries(_nest(5000))
    assert caught.value.status_code == 413
    assert caught.value.error_code == "haechi_request_too_deeply_nested"
    assert "limits.maxNestingDepth" in str(caught.value)


def test_default_depth_allows_containers_up_to_depth_255() -> None:
    assert DEFAULT_MAX_NESTING_DEPTH == 256
    # The root list is at depth 0; the innermost list of _nest(256) sits at depth 255.
    (entry,) = collect_entries(_nest(DEFAULT_MAX_NESTING_DEPTH, "leaf"))
    assert len(entry.path) == DEFAULT_MAX_NESTING_DEPTH
    with pytest.raises(LimitError):
        collect_entries(_nest(DEFAULT_MAX_NESTING_DEPTH + 1))


def test_a_custom_depth_is_honoured_for_objects_too() -> None:
    payload: Any = "leaf"
    for _ in range(4):
        payload = {"k": payload}
    assert len(collect_entries(payload, max_depth=4)) == 5
    with pytest.raises(LimitError):
        collect_entries(payload, max_depth=3)
    # A leaf deeper than the limit in a flat container is fine: only containers count.
    assert collect_entries({"k": "v"}, max_depth=1)
    with pytest.raises(LimitError):
        collect_entries({"k": []}, max_depth=1)


def test_a_very_deep_limit_is_walked_without_recursion() -> None:
    (entry,) = collect_entries(_nest(3000, "deep"), max_depth=5000)
    assert entry.value == "deep"
