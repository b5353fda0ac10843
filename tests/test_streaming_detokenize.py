# SPDX-License-Identifier: Apache-2.0
"""Streamed de-tokenization: markers cut across frames, only this request's tokens."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import anyio
import pytest
from hypothesis import given
from hypothesis import strategies as st

from haechi.streaming import StreamDetokenizer

MINE = "tok_email_0123456789abcdef"
OTHER = "tok_email_fedcba9876543210"
PLAIN = {MINE: 'ann@example.com "quoted"'}


class _Vault:
    """Answers like a vault's ``detokenize``: known tokens only, and counts its calls."""

    def __init__(self, known: Mapping[str, str]) -> None:
        self.known = dict(known)
        self.calls = 0

    async def detokenize(self, tokens: Sequence[str]) -> dict[str, str]:
        self.calls += 1
        return {token: self.known[token] for token in tokens if token in self.known}


async def _stream(pieces: list[str], detokenizer: StreamDetokenizer) -> str:
    out = [await detokenizer.restore(detokenizer.hold(piece)) for piece in pieces]
    out.append(await detokenizer.restore(detokenizer.drain()))
    return "".join(out)


@pytest.mark.anyio
async def test_marker_split_across_pieces_is_restored() -> None:
    vault = _Vault(PLAIN)
    text = f"write to [TOKEN:{MINE}] today"
    pieces = [text[i : i + 3] for i in range(0, len(text), 3)]
    result = await _stream(pieces, StreamDetokenizer([MINE], vault.detokenize))
    assert result == f"write to {PLAIN[MINE]} today"
    assert vault.calls == 1


@pytest.mark.anyio
async def test_foreign_token_is_left_alone_and_costs_no_vault_call() -> None:
    vault = _Vault({**PLAIN, OTHER: "other@example.com"})
    text = f"see [TOKEN:{OTHER}] and [TOKEN:tok_x] [links](u) [TOK"
    result = await _stream(list(text), StreamDetokenizer([MINE], vault.detokenize))
    assert result == text
    assert vault.calls == 0


@pytest.mark.anyio
async def test_unknown_token_stays_a_marker() -> None:
    vault = _Vault({})
    detokenizer = StreamDetokenizer([MINE], vault.detokenize)
    assert await detokenizer.restore(f"[TOKEN:{MINE}]") == f"[TOKEN:{MINE}]"


@pytest.mark.anyio
async def test_restore_inside_serialised_json_escapes_the_plaintext() -> None:
    detokenizer = StreamDetokenizer([MINE], _Vault(PLAIN).detokenize)
    restored = await detokenizer.restore(f'{{"t":"a [TOKEN:{MINE}]"}}', json_string=True)
    assert restored == '{"t":"a ann@example.com \\"quoted\\""}'


def test_hold_keeps_only_a_possible_prefix_of_this_requests_markers() -> None:
    detokenizer = StreamDetokenizer([MINE], _Vault(PLAIN).detokenize)
    assert detokenizer.hold("abc [TOK") == "abc "
    assert detokenizer.hold("EN:tok_em") == ""
    assert detokenizer.hold("ail_X") == "[TOKEN:tok_email_X"
    assert detokenizer.hold("[x] [") == "[x] "
    assert detokenizer.drain() == "["


@given(
    before=st.text(max_size=20),
    after=st.text(max_size=20),
    cuts=st.lists(st.integers(min_value=1, max_value=9), max_size=12),
)
def test_restoration_does_not_depend_on_where_the_text_is_cut(
    before: str, after: str, cuts: list[int]
) -> None:
    text = f"{before}[TOKEN:{MINE}]{after}"
    pieces: list[str] = []
    position = 0
    for cut in cuts:
        pieces.append(text[position : position + cut])
        position += cut
    pieces.append(text[position:])

    async def whole() -> str:
        return await StreamDetokenizer([MINE], _Vault(PLAIN).detokenize).restore(text)

    async def streamed() -> str:
        return await _stream(pieces, StreamDetokenizer([MINE], _Vault(PLAIN).detokenize))

    assert anyio.run(streamed) == anyio.run(whole)
