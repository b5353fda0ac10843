# SPDX-License-Identifier: Apache-2.0
"""Streamed de-tokenization against the real vault: cut markers, only this request's tokens."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from haechi._string_nesting import StringNesting
from haechi.crypto import init_key_file
from haechi.runtime import Runtime, create_runtime
from haechi.streaming import StreamDetokenizer
from tests.stream_fixtures import nested_arguments, unnested_argument

MINE_VALUE = "ann@example.com"
OTHER_VALUE = "bob@example.org"


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.Runner]:
    with asyncio.Runner() as runner:
        yield runner


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("stream-detokenize")


@pytest.fixture(scope="module")
def runtime(state: Path, loop: asyncio.Runner) -> Iterator[Runtime]:
    init_key_file(state / "keys.json")
    runtime = create_runtime(
        {
            "mode": "enforce",
            "policy": {
                "mode": "enforce",
                "actions": {"email": "tokenize", "quoted_name": "tokenize"},
            },
            # A value with a quote and a backslash, to see it restored inside JSON.
            "filters": {
                "customRules": [
                    {"id": "quoted-name", "type": "quoted_name", "pattern": r'NAME"[a-z]+\\'}
                ]
            },
            "keys": {"keyFile": str(state / "keys.json")},
            "audit": {"path": str(state / "audit.jsonl")},
            "tokenVault": {"path": str(state / "vault.json")},
        }
    )
    yield runtime
    loop.run(runtime.aclose())


@pytest.fixture(scope="module")
def tokens(runtime: Runtime, loop: asyncio.Runner) -> tuple[str, str]:
    """A token of "this request" and one of another request."""
    mine = loop.run(runtime.protect({"t": MINE_VALUE})).issued_tokens[0]
    other = loop.run(runtime.protect({"t": OTHER_VALUE})).issued_tokens[0]
    return mine, other


def _detokenize_events(state: Path) -> int:
    lines = (state / "audit.jsonl").read_text().splitlines()
    return sum(json.loads(line)["operation"] == "token-vault:detokenize" for line in lines)


async def _stream(pieces: list[str], detokenizer: StreamDetokenizer) -> str:
    out = [await detokenizer.restore(detokenizer.hold(piece)) for piece in pieces]
    out.append(await detokenizer.restore(detokenizer.drain()))
    return "".join(out)


def _cut(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


def _cut_at(text: str, cuts: list[int]) -> list[str]:
    """``text`` in pieces of the lengths ``cuts``, and the rest."""
    pieces: list[str] = []
    position = 0
    for cut in cuts:
        pieces.append(text[position : position + cut])
        position += cut
    pieces.append(text[position:])
    return pieces


def test_marker_split_across_pieces_is_restored(
    runtime: Runtime, loop: asyncio.Runner, tokens: tuple[str, str], state: Path
) -> None:
    mine, _ = tokens
    before = _detokenize_events(state)
    detokenizer = StreamDetokenizer([mine], runtime.token_vault.detokenize)
    result = loop.run(_stream(_cut(f"write to [TOKEN:{mine}] today", 3), detokenizer))
    assert result == f"write to {MINE_VALUE} today"
    assert _detokenize_events(state) == before + 1


def test_foreign_token_is_left_alone_and_costs_no_vault_call(
    runtime: Runtime, loop: asyncio.Runner, tokens: tuple[str, str], state: Path
) -> None:
    mine, other = tokens
    before = _detokenize_events(state)
    text = f"see [TOKEN:{other}] and [TOKEN:tok_x] [links](u) [TOK"
    detokenizer = StreamDetokenizer([mine], runtime.token_vault.detokenize)
    assert loop.run(_stream(list(text), detokenizer)) == text
    assert _detokenize_events(state) == before


def test_restore_inside_serialised_json_escapes_the_plaintext(
    runtime: Runtime, loop: asyncio.Runner, state: Path
) -> None:
    quoted = 'NAME"ann\\'
    (token,) = loop.run(runtime.protect({"t": quoted})).issued_tokens
    detokenizer = StreamDetokenizer([token], runtime.token_vault.detokenize)
    document: Any = {"t": f"x [TOKEN:{token}]"}
    restored = loop.run(detokenizer.restore(json.dumps(document), json_string=True))
    assert json.loads(restored) == {"t": f"x {quoted}"}


def test_hold_keeps_only_a_possible_prefix_of_this_requests_markers(
    runtime: Runtime, tokens: tuple[str, str]
) -> None:
    mine, _ = tokens
    detokenizer = StreamDetokenizer([mine], runtime.token_vault.detokenize)
    assert detokenizer.hold("abc [TOK") == "abc "
    assert detokenizer.hold("EN:tok_em") == ""
    assert detokenizer.hold("ail_X") == "[TOKEN:tok_email_X"
    assert detokenizer.hold("[x] [") == "[x] "
    assert detokenizer.drain() == "["


@settings(max_examples=40, deadline=None)
@given(
    before=st.text(max_size=20),
    after=st.text(max_size=20),
    cuts=st.lists(st.integers(min_value=1, max_value=9), max_size=12),
)
def test_restoration_does_not_depend_on_where_the_text_is_cut(
    runtime: Runtime,
    loop: asyncio.Runner,
    tokens: tuple[str, str],
    before: str,
    after: str,
    cuts: list[int],
) -> None:
    mine, _ = tokens
    text = f"{before}[TOKEN:{mine}]{after}"
    detokenizer = StreamDetokenizer([mine], runtime.token_vault.detokenize)
    assert loop.run(_stream(_cut_at(text, cuts), detokenizer)) == f"{before}{MINE_VALUE}{after}"


@settings(max_examples=40, deadline=None)
@given(
    depth=st.integers(min_value=1, max_value=4),
    cuts=st.lists(st.integers(min_value=1, max_value=9), max_size=40),
)
def test_a_value_deep_in_streamed_json_source_decodes_back_at_every_level(
    runtime: Runtime, loop: asyncio.Runner, depth: int, cuts: list[int]
) -> None:
    quoted = 'NAME"ann\\'
    (token,) = loop.run(runtime.protect({"t": quoted})).issued_tokens
    pieces = _cut_at(nested_arguments(f"[TOKEN:{token}]", depth), cuts)
    detokenizer = StreamDetokenizer([token], runtime.token_vault.detokenize)
    nesting = StringNesting()

    async def stream() -> str:
        out = [await detokenizer.restore_read(detokenizer.hold(p), (nesting,)) for p in pieces]
        out.append(await detokenizer.restore_read(detokenizer.drain(), (nesting,)))
        return "".join(out)

    assert unnested_argument(loop.run(stream()), depth) == quoted
