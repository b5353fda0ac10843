# SPDX-License-Identifier: Apache-2.0
"""A Gemini candidate's text all comes before (or in) the chunk that finishes it.

A window holds the end of each candidate's text back. The chunk carrying a candidate's
``finishReason`` (or ``finish_reason``: the API and google-genai read a field by its JSON
name or its proto name) is preceded by what that candidate's windows hold, and takes it
itself when it carries more of that text: a client that stops reading a candidate at its
finish would otherwise miss its end. Read through the real gateway as a client adding the
candidates up by ``index`` does.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.stream_fixtures import EMAIL, INSPECT_REDACTING, REDACTED, read_sse, sse
from tests.upstream_server import Reply, gateway_in_front

GEMINI_CONFIG = {**INSPECT_REDACTING, "target": {"type": "gemini"}}
SPELLINGS = ("finishReason", "finish_reason")


def _candidate(
    index: int, text: str | None, finish: str | None = None, *, spelling: str = SPELLINGS[0]
) -> dict[str, Any]:
    """A streamed candidate carrying ``text`` (no content for ``None``), finished when
    ``finish`` is given, in ``spelling``."""
    candidate: dict[str, Any] = {"index": index}
    if text is not None:
        candidate["content"] = {"role": "model", "parts": [{"text": text}]}
    if finish is not None:
        candidate[spelling] = finish
    return candidate


def _wire(*chunks: list[dict[str, Any]]) -> bytes:
    """An ``alt=sse`` stream of ``chunks`` (CRLF, as Google sends it), then a usage chunk."""
    usage = {"usageMetadata": {"promptTokenCount": 1, "totalTokenCount": 2}, "modelVersion": "g"}
    frames = [*({"candidates": chunk, "modelVersion": "g"} for chunk in chunks), usage]
    return "".join(sse(frame, newline="\r\n") for frame in frames).encode()


def _read_candidates(tmp_path: Path, wire: bytes, count: int) -> tuple[list[str], list[str]]:
    """Each candidate's answer and thought as a client adding candidates up by ``index``
    reads them from the gateway in front of an upstream sending ``wire``; fails on text of a
    candidate after the chunk that finished it (in either spelling), and on a candidate
    never finished."""
    request: dict[str, Any] = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    if count > 1:
        request["generationConfig"] = {"candidateCount": count}
    with gateway_in_front(tmp_path, GEMINI_CONFIG) as gw:
        gw.upstream.queue(Reply(wire=[wire]))
        response = httpx.post(
            f"{gw.url}/v1beta/models/g:streamGenerateContent?alt=sse", json=request
        )
    assert response.status_code == 200
    assert "jane.d" not in response.text
    answers, thoughts = [""] * count, [""] * count
    finished = [False] * count
    for frame in read_sse(response.content):
        for at, candidate in enumerate(json.loads(frame.data or "{}").get("candidates") or ()):
            index = int(candidate.get("index", at))
            for part in (candidate.get("content") or {}).get("parts") or ():
                text = part.get("text") or ""
                assert not (finished[index] and text), f"text of candidate {index} after finish"
                if part.get("thought"):
                    thoughts[index] += text
                else:
                    answers[index] += text
            finished[index] = any(candidate.get(name) is not None for name in SPELLINGS)
    assert finished == [True] * count
    return answers, thoughts


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_a_candidate_cut_across_its_finishing_chunk_is_whole_and_finished_last(
    tmp_path: Path, spelling: str
) -> None:
    """The address is cut between a chunk and the chunk that finishes the one candidate."""
    wire = _wire(
        [_candidate(0, "write to jane.d")],
        [_candidate(0, "oe@example.com ok", "STOP", spelling=spelling)],
    )
    assert _read_candidates(tmp_path, wire, 1) == ([f"write to {REDACTED} ok"], [""])


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_two_candidates_each_get_their_text_before_or_in_their_finishing_chunk(
    tmp_path: Path, spelling: str
) -> None:
    """Candidate 1 finishes first, in a chunk carrying no text of it, beside candidate 0
    still going on; candidate 0 finishes in a chunk carrying the end of a cut address."""
    wire = _wire(
        [_candidate(0, "write to jane.d"), _candidate(1, f"mail {EMAIL}")],
        [_candidate(0, "oe@example.com"), _candidate(1, None, "STOP", spelling=spelling)],
        [_candidate(0, " or jane.d")],
        [_candidate(0, "oe@example.com ok", "STOP", spelling=spelling)],
    )
    answers = [f"write to {REDACTED} or {REDACTED} ok", f"mail {REDACTED}"]
    assert _read_candidates(tmp_path, wire, 2) == (answers, ["", ""])


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_a_later_candidate_cut_across_its_finishing_chunk_is_whole_and_finished_last(
    tmp_path: Path, spelling: str
) -> None:
    """Candidate 1's address is cut between a chunk and the chunk that finishes it, and
    that chunk lists it before candidate 0, which goes on."""
    wire = _wire(
        [_candidate(0, "Hello"), _candidate(1, "write to jane.d")],
        [_candidate(1, "oe@example.com ok", "STOP", spelling=spelling), _candidate(0, " there")],
        [_candidate(0, " and more", "STOP", spelling=spelling)],
    )
    answers = ["Hello there and more", f"write to {REDACTED} ok"]
    assert _read_candidates(tmp_path, wire, 2) == (answers, ["", ""])


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_a_candidates_held_thought_goes_out_before_the_chunk_that_finishes_it(
    tmp_path: Path, spelling: str
) -> None:
    """The thought's window holds its end while the answer follows; the finishing chunk
    carries answer text only."""
    thought = {
        "index": 0,
        "content": {"role": "model", "parts": [{"text": f"think of {EMAIL}", "thought": True}]},
    }
    wire = _wire(
        [thought],
        [_candidate(0, "Fine")],
        [_candidate(0, " then", "STOP", spelling=spelling)],
    )
    assert _read_candidates(tmp_path, wire, 1) == (["Fine then"], [f"think of {REDACTED}"])
