# SPDX-License-Identifier: Apache-2.0
"""Streamed de-tokenization: which frame tails are held back as a possible marker start."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from haechi.streaming import StreamDetokenizer


async def _nothing(tokens: Sequence[str]) -> Mapping[str, str]:
    return {}


def test_only_a_possible_start_of_this_requests_markers_is_held() -> None:
    tokens = ["tok_email_0123abcd4567ef89", "tok_email_0123abcd4567ef8a", "tok_pw_aaaabbbbccccdddd"]
    detokenizer = StreamDetokenizer(tokens, _nothing)
    assert detokenizer.hold("a [TOKEN:tok_email_0123abcd4567ef8") == "a "
    assert detokenizer.hold("b") == "[TOKEN:tok_email_0123abcd4567ef8b"
    assert detokenizer.hold("[TOKEN:tok_pw_aaaabbbbccccdddd]") == "[TOKEN:tok_pw_aaaabbbbccccdddd]"
    assert detokenizer.hold("[TOKEN:tok_pw_aaaabbbbccccdddd") == ""
    assert detokenizer.hold("x[[TOKEN:tok_e") == "[TOKEN:tok_pw_aaaabbbbccccddddx["
    assert detokenizer.hold("[TOKEN:tok_z") == "[TOKEN:tok_e[TOKEN:tok_z"
    assert detokenizer.drain() == ""
