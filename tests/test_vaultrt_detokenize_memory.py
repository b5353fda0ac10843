# SPDX-License-Identifier: Apache-2.0
"""Streamed de-tokenization of a request that issued many tokens.

A request may have a thousand values tokenized (``tokenVault.maxTokensPerPayload``). The
restorer of its stream once compiled a pattern naming every one of its ids: the ``re``
module keeps compiled patterns (up to 512) after the stream ends, so each such stream left
about 170 KB behind in the process, tens of megabytes after a few hundred.
"""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Mapping, Sequence

import anyio

from haechi.streaming import StreamDetokenizer
from haechi.vault._tokens import random_token

#: Streams restored one after the other in the test, and the tokens each issued.
STREAMS = 30
TOKENS = 1000


def _stream(tokens: list[str]) -> str:
    """Restore the markers of a stream of ``tokens`` that repeats the first and a foreign one."""
    values = {token: f"value-{index}" for index, token in enumerate(tokens)}

    async def resolve(wanted: Sequence[str]) -> Mapping[str, str]:
        return {token: values[token] for token in wanted}

    detokenizer = StreamDetokenizer(tokens, resolve)
    foreign = random_token("email")
    text = f"a [TOKEN:{tokens[0]}] b [TOKEN:{foreign}] c"
    return anyio.run(detokenizer.restore, text)


def test_restoring_streams_of_many_tokens_keeps_nothing_once_they_ended() -> None:
    batches = [[random_token("email") for _ in range(TOKENS)] for _ in range(STREAMS)]
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    try:
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        for tokens in batches:
            restored = _stream(tokens)
            assert restored.startswith("a value-0 b [TOKEN:tok_email_")
        gc.collect()
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        if started:
            tracemalloc.stop()
    # Thirty streams kept about 5 MB; what is left now is noise.
    assert kept < 1_000_000


def test_a_resolver_answering_for_another_token_restores_only_this_requests() -> None:
    """Only this request's markers are restored, whatever the resolver hands back."""
    mine, theirs = random_token("email"), random_token("email")

    async def resolve(wanted: Sequence[str]) -> Mapping[str, str]:
        return {mine: "ann.a@example.com", theirs: "bob.b@example.org"}

    detokenizer = StreamDetokenizer([mine], resolve)
    restored = anyio.run(detokenizer.restore, f"[TOKEN:{mine}] [TOKEN:{theirs}]")
    assert restored == f"ann.a@example.com [TOKEN:{theirs}]"
