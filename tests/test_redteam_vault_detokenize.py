# SPDX-License-Identifier: Apache-2.0
"""Streamed de-tokenization against a hostile upstream: many tokens, many marker starts."""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping, Sequence

from haechi.streaming import StreamDetokenizer


async def _nothing(tokens: Sequence[str]) -> Mapping[str, str]:
    return {}


def _tokens(count: int) -> list[str]:
    return [f"tok_email_{secrets.token_hex(8)}" for _ in range(count)]


def test_holding_back_a_marker_start_does_not_cost_a_look_at_every_token() -> None:
    """A request that issued many tokens, answered by frames full of marker starts: deciding
    what to hold back runs on the event loop for every frame, so its cost must not grow
    with the number of tokens (it compared every ``[`` with every marker: about 80 ms a
    frame at 10,000 tokens, which stalls every other request)."""
    detokenizer = StreamDetokenizer(_tokens(20_000), _nothing)
    frame = "[TOKEN:tok_email_" + "[" * 40
    started = time.perf_counter()
    for _ in range(200):
        detokenizer.drain()
        detokenizer.hold(frame)
    assert time.perf_counter() - started < 1.0


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
