# SPDX-License-Identifier: Apache-2.0
"""Values cut across JSON strings that a real reader joins in a way of its own.

llama.cpp's ``/infill`` reads its ``prompt`` straight after ``input_prefix``; Ollama's Go
client binds ``Token`` and ``TOKEN`` to a log-probability's ``token``; google-genai's
``response.text`` joins the text parts of an answer that are not thoughts, skipping the
parts between them; a JavaScript client's ``join("")`` reads a ``null`` token piece as
empty. Each join is scanned, and the gateway, on a real socket in front of a stand-in
upstream, never lets a value cut that way through in enforce mode.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from haechi import create_runtime
from haechi.pieces import find_piece_runs
from haechi.runtime import Runtime
from tests.upstream_server import Gateway, Reply, SharedGateways, gateway_in_front

EMAIL = "jane.doe@example.com"
PROTECTED = "mail [REDACTED:email]"
PROTECT = {
    "streaming": {"requestMode": "inspect"},
    "responseProtection": {"enabled": True},
    "policy": {"actions": {"email": "redact"}},
}
JSON = {"content-type": "application/json"}


def _runtime() -> Runtime:
    return create_runtime(
        {"mode": "enforce", "audit": {"sink": "memory"}, "tokenVault": {"provider": "memory"}}
    )


# -- llama.cpp /infill: the prompt goes on after input_prefix -------------------------------


def test_the_infill_prompt_is_read_after_the_prefix() -> None:
    runs = find_piece_runs(
        {"input_prefix": "mail jane.doe@", "prompt": "example.com"}, answer=False
    )
    assert [run.text for run in runs] == ["mail jane.doe@example.com"]
    # A list prefix goes on into the prompt from the strings at its end; a token id at its
    # end keeps them apart, and the suffix comes after a special token.
    listed = {"input_prefix": ["a", "b", "mail jane.", "doe@"], "prompt": "example.com"}
    assert [run.text for run in find_piece_runs(listed, answer=False)] == [
        "abmail jane.doe@example.com"
    ]
    split = {"input_prefix": ["x", "y", 7, "mail jane.", "doe@"], "prompt": "example.com"}
    assert sorted(run.text for run in find_piece_runs(split, answer=False)) == [
        "mail jane.doe@example.com",
        "xy",
    ]
    ended = {"input_prefix": ["mail jane.", "doe@", 7], "prompt": "example.com"}
    assert [run.text for run in find_piece_runs(ended, answer=False)] == ["mail jane.doe@"]
    apart = {"input_prefix": "x", "prompt": "mail jane.doe@", "input_suffix": "example.com"}
    assert [run.text for run in find_piece_runs(apart, answer=False)] == ["xmail jane.doe@"]
    assert find_piece_runs({"input_prefix": "a", "prompt": "b"}, answer=True) == []


@settings(max_examples=60, deadline=None)
@given(cut=st.integers(min_value=0, max_value=40), listed=st.booleans())
def test_an_infill_prompt_cut_anywhere_reads_as_the_protected_prompt(
    cut: int, listed: bool
) -> None:
    text = f"# mail {EMAIL} now"
    cut = min(cut, len(text))
    prefix: Any = [text[: cut // 2], text[cut // 2 : cut]] if listed else text[:cut]
    request = {"input_prefix": prefix, "prompt": text[cut:], "input_suffix": ""}
    result = asyncio.run(_runtime().protect(request, direction="request"))
    sent = result.payload
    read = "".join(sent["input_prefix"]) if listed else sent["input_prefix"]
    assert read + sent["prompt"] == "# mail [REDACTED:email] now"
    assert result.summary["byType"] == {"email": 1}


def test_llama_cpp_never_reads_an_address_cut_between_prefix_and_prompt(tmp_path: Path) -> None:
    with gateway_in_front(tmp_path, {"target": {"type": "llama-cpp"}}) as llama:
        infill = {"input_prefix": "mail jane.doe@", "prompt": "example.com", "input_suffix": ""}
        httpx.post(f"{llama.url}/infill", json=infill)
        sent = llama.upstream.last.json()
        assert sent["input_prefix"] + sent["prompt"] == PROTECTED
        card = {"input_prefix": ["pay 4111 1111", " 1111"], "prompt": " 1111", "input_suffix": ""}
        refused = httpx.post(f"{llama.url}/infill", json=card)
        assert refused.status_code == 403
        assert len(llama.upstream.received) == 1


# -- Ollama's Go client: Token, TOKEN ---------------------------------------------------------


def _ollama_token(text: str, name: str = "Token") -> dict[str, Any]:
    alternatives = [{name: text, "logprob": -0.1}, {name: "x", "logprob": -3.0}]
    return {name: text, "Logprob": -0.1, "Bytes": list(text.encode()), "Top_Logprobs": alternatives}


@pytest.fixture
def ollama(shared_gateway: SharedGateways) -> Gateway:
    return shared_gateway({**PROTECT, "target": {"type": "ollama"}})


def _go_tokens(tokens: list[dict[str, Any]]) -> str:
    """The pieces as Go's decoder reads them: any letter case, the last member wins."""
    read = []
    for token in tokens:
        named = [value for key, value in token.items() if key.lower() == "token"]
        read.append(named[-1] if named else "")
    return "".join(read)


@pytest.mark.parametrize("names", [("Token", "Token"), ("token", "TOKEN")])
def test_ollama_answers_lose_pieces_named_in_another_case(
    ollama: Gateway, names: tuple[str, str]
) -> None:
    tokens = [_ollama_token("mail jane.doe@", names[0]), _ollama_token("example.com", names[1])]
    answer = {
        "model": "m",
        "message": {"role": "assistant", "content": "ok"},
        "done": True,
        "logprobs": tokens,
    }
    ollama.upstream.queue(Reply(body=json.dumps(answer).encode(), headers=JSON))
    request = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": False}
    response = httpx.post(f"{ollama.url}/api/chat", json=request)
    assert response.status_code == 200
    relayed = response.json()["logprobs"]
    assert _go_tokens(relayed) == PROTECTED
    for token in relayed:
        assert bytes(token["Bytes"]) == _go_tokens([token]).encode()
        assert not token["Top_Logprobs"]
    assert "jane" not in response.text


def test_an_enforced_ollama_stream_carries_no_pieces_in_another_case(ollama: Gateway) -> None:
    frames = [
        {
            "model": "m",
            "message": {"role": "assistant", "content": piece},
            "done": False,
            "logprobs": [_ollama_token(piece)],
        }
        for piece in ["mail jane.doe@", "example.com"]
    ]
    frames.append({"model": "m", "message": {"role": "assistant", "content": ""}, "done": True})
    wire = [(json.dumps(frame) + "\n").encode() for frame in frames]
    ollama.upstream.queue(Reply(wire=wire, headers={"content-type": "application/x-ndjson"}))
    request = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    response = httpx.post(f"{ollama.url}/api/chat", json=request)
    assert response.status_code == 200
    values = [json.loads(line) for line in response.text.splitlines() if line]
    assert "".join(value["message"]["content"] for value in values) == PROTECTED
    assert all(not value.get("logprobs") for value in values)
    assert "jane" not in response.text


# -- Gemini: google-genai's response.text skips thoughts and other parts --------------------


def test_the_text_parts_of_an_answer_are_also_read_without_what_lies_between() -> None:
    parts = [{"text": "mail jane.doe@"}, {"text": "...", "thought": True}, {"text": "example.com"}]
    runs = find_piece_runs({"parts": parts}, answer=True)
    assert sorted(run.text for run in runs) == ["mail jane.doe@...example.com", f"mail {EMAIL}"]
    # Consecutive parts with no other text around them are one run only; a thought after
    # them still makes the join of all parts another text.
    plain = [{"text": "a"}, {"text": "b"}, {"functionCall": {"name": "f"}}]
    assert [run.text for run in find_piece_runs({"parts": plain}, answer=True)] == ["ab"]
    plain[2] = {"text": "c", "thought": True}
    assert sorted(run.text for run in find_piece_runs({"parts": plain}, answer=True)) == [
        "ab",
        "abc",
    ]
    assert [run.text for run in find_piece_runs({"parts": parts}, answer=False)] == [
        "mail jane.doe@...example.com"
    ]


@pytest.fixture
def gemini(shared_gateway: SharedGateways) -> Gateway:
    return shared_gateway({**PROTECT, "target": {"type": "gemini"}})


def _genai_text(answer: dict[str, Any]) -> str:
    """google-genai's ``response.text``: the string texts of the first candidate's parts
    that are not thoughts."""
    parts = answer["candidates"][0]["content"]["parts"]
    return "".join(
        part["text"]
        for part in parts
        if isinstance(part.get("text"), str) and part.get("thought") is not True
    )


@pytest.mark.parametrize(
    "between",
    [
        {"text": "...", "thought": True},
        {"functionCall": {"name": "lookup", "args": {}}},
        {"text": None},
    ],
)
def test_gemini_answers_never_show_an_address_around_a_thought(
    gemini: Gateway, between: dict[str, Any]
) -> None:
    parts = [{"text": "mail jane.doe@"}, between, {"text": "example.com"}]
    answer = {"candidates": [{"content": {"role": "model", "parts": parts}, "index": 0}]}
    gemini.upstream.queue(Reply(body=json.dumps(answer).encode(), headers=JSON))
    request = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    response = httpx.post(f"{gemini.url}/v1beta/models/m:generateContent", json=request)
    assert response.status_code == 200
    assert _genai_text(response.json()) == PROTECTED
    assert "jane" not in response.text


def test_a_value_both_joins_read_is_counted_once() -> None:
    parts = [
        {"text": "mail jane."},
        {"text": "doe@example.com"},
        {"text": " hmm", "thought": True},
        {"text": " now"},
    ]
    answer = {"candidates": [{"content": {"role": "model", "parts": parts}}]}
    result = asyncio.run(_runtime().protect(answer, direction="response"))
    assert result.summary["byType"] == {"email": 1}
    protected = result.payload["candidates"][0]["content"]["parts"]
    assert [part["text"] for part in protected] == ["mail [REDACTED:email]", "", " hmm", " now"]


@settings(max_examples=60, deadline=None)
@given(
    cuts=st.lists(st.integers(min_value=0, max_value=30), max_size=4),
    thought=st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=3),
)
def test_answer_parts_around_thoughts_read_as_the_protected_text(
    cuts: list[int], thought: str
) -> None:
    text = f"mail {EMAIL} now"
    bounds = sorted({0, len(text), *(cut for cut in cuts if cut < len(text))})
    pieces = [text[a:b] for a, b in itertools.pairwise(bounds)]
    parts: list[dict[str, Any]] = []
    for piece in pieces:
        parts += [{"text": piece}, {"text": thought, "thought": True}]
    answer = {"candidates": [{"content": {"role": "model", "parts": parts}}]}
    result = asyncio.run(_runtime().protect(answer, direction="response"))
    # The address alone is gone; its marker stands where the finding starts, which for the
    # join with the thoughts may be a thought.
    assert _genai_text(result.payload).replace("[REDACTED:email]", "") == "mail  now"


# -- completions: null token pieces read as empty -----------------------------------------


def test_null_token_pieces_are_empty_pieces() -> None:
    (run,) = find_piece_runs({"tokens": ["jane.doe@", None, "example.com"]}, answer=True)
    assert run.text == EMAIL
    assert find_piece_runs({"tokens": [None, None]}, answer=True) == []


def test_completions_pieces_around_a_null_are_scrubbed(tmp_path: Path) -> None:
    tokens = ["mail jane.doe@", None, "example.com"]
    logprobs = {
        "tokens": tokens,
        "token_logprobs": [-0.1, None, -0.1],
        "top_logprobs": [{token: -0.1} if token else None for token in tokens],
        "text_offset": [0, 14, 14],
    }
    answer = {
        "id": "c",
        "object": "text_completion",
        "model": "m",
        "choices": [{"index": 0, "text": "ok", "logprobs": logprobs, "finish_reason": "stop"}],
    }
    with gateway_in_front(tmp_path, PROTECT) as gateway:
        gateway.upstream.queue(Reply(body=json.dumps(answer).encode(), headers=JSON))
        response = httpx.post(
            f"{gateway.url}/v1/completions", json={"model": "m", "prompt": "hi", "logprobs": 1}
        )
    assert response.status_code == 200
    relayed = response.json()["choices"][0]["logprobs"]
    assert "".join(token or "" for token in relayed["tokens"]) == PROTECTED
    assert relayed["tokens"][1] is None
    assert "jane" not in response.text
