# SPDX-License-Identifier: Apache-2.0
"""A value cut across several JSON strings is still found and protected.

A model answer with ``logprobs`` repeats its text as vocabulary pieces, and a message's
content can be a list of text parts that the model reads as one text. Such pieces are
scanned joined, and in enforce mode the pieces a finding covers are rewritten (tokens with
their bytes and alternatives); an enforced stream carries no token pieces at all.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from haechi import create_runtime
from haechi.pieces import PieceRun, drop_piece_runs, find_piece_runs, scrub_piece_runs
from haechi.runtime import Runtime
from tests.upstream_server import Gateway, Reply, gateway_in_front

pytestmark = pytest.mark.anyio

EMAIL = "jane.doe@example.com"
CARD = "4111 1111 1111 1111"
PIECES = ["Write", " to", " jane", ".doe", "@example", ".com", " now"]
ANSWER = "".join(PIECES)
PROTECTED = "Write to [REDACTED:email] now"


def _piece(text: str) -> dict[str, Any]:
    alternatives = [{"token": text.upper(), "logprob": -2.0, "bytes": list(text.upper().encode())}]
    return {
        "token": text,
        "logprob": -0.1,
        "bytes": list(text.encode()),
        "top_logprobs": alternatives,
    }


def chat_answer(pieces: list[str]) -> dict[str, Any]:
    """An OpenAI chat completion whose choice carries ``logprobs`` for its content."""
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "".join(pieces)},
                "logprobs": {"content": [_piece(p) for p in pieces], "refusal": None},
                "finish_reason": "stop",
            }
        ],
    }


@pytest.fixture
def runtime(pieces_runtime: Runtime) -> Runtime:
    return pieces_runtime


def _tokens(document: dict[str, Any]) -> list[dict[str, Any]]:
    tokens: list[dict[str, Any]] = document["choices"][0]["logprobs"]["content"]
    return tokens


# -- finding the pieces -------------------------------------------------------------------


def test_the_piece_lists_of_every_provider_are_found() -> None:
    document = {
        "chat": chat_answer(PIECES),
        "completions": {
            "logprobs": {
                "tokens": PIECES,
                "token_logprobs": [-0.1] * len(PIECES),
                "top_logprobs": [{p: -0.1} for p in PIECES],
                "text_offset": list(range(len(PIECES))),
            }
        },
        "responses": {
            "output": [{"content": [{"text": ANSWER, "logprobs": [_piece(p) for p in PIECES]}]}]
        },
        "gemini": {
            "logprobsResult": {
                "topCandidates": [
                    {"candidates": [{"token": p, "logProbability": -1.0}]} for p in PIECES
                ],
                "chosenCandidates": [{"token": p, "logProbability": -0.1} for p in PIECES],
            }
        },
        "llama.cpp": {"completion_probabilities": [_piece(p) for p in PIECES]},
    }
    runs = {run.path: run for run in find_piece_runs(document, answer=True)}
    assert set(runs) == {
        ("chat", "choices", 0, "logprobs", "content"),
        ("completions", "logprobs", "tokens"),
        ("responses", "output", 0, "content", 0, "logprobs"),
        ("gemini", "logprobsResult", "chosenCandidates"),
        ("llama.cpp", "completion_probabilities"),
    }
    assert all(run.text == ANSWER for run in runs.values())
    assert runs[("completions", "logprobs", "tokens")].alternatives == (
        ("completions", "logprobs", "top_logprobs"),
    )
    assert runs[("gemini", "logprobsResult", "chosenCandidates")].alternatives == (
        ("gemini", "logprobsResult", "topCandidates"),
    )
    assert runs[("chat", "choices", 0, "logprobs", "content")].field == "token"
    assert runs[("completions", "logprobs", "tokens")].field is None


def test_lists_that_are_not_pieces_are_left_alone() -> None:
    document = {
        "tokens": [1, 2, 3],  # token ids, not text
        "names": [{"name": "a"}, {"name": "b"}],  # no element is a piece
        "top_logprobs": [{"token": "alone"}],  # alternatives with no run beside them
        "empty": [],
    }
    assert [run.path for run in find_piece_runs(document, answer=True)] == [("top_logprobs",)]
    assert find_piece_runs(document, answer=False) == []


def test_an_odd_element_does_not_keep_the_pieces_around_it_apart() -> None:
    """A list of which only some elements are token objects is read as pieces all the same
    (the odd ones empty): a client shows the pieces it has one after another."""
    document = {"items": [{"token": "jane.doe@"}, {"odd": 1}, 7, {"token": "example.com"}]}
    [run] = find_piece_runs(document, answer=True)
    assert run.path == ("items",)
    assert run.text == "jane.doe@example.com"


def test_scrubbing_rewrites_covered_pieces_empties_all_alternatives_copies_on_write() -> None:
    document = {
        "completions": {
            "tokens": ["a ", "jane", ".doe", "@x.org", " b"],
            "top_logprobs": [{"a ": -1}, {"jane": -1}, {".doe": -1}, {"@x.org": -1}, {" b": -1}],
        }
    }
    (run,) = find_piece_runs(document, answer=True)
    before = json.dumps(document)
    scrubbed = scrub_piece_runs(document, [(run, [(2, 16, "[X]")])])
    assert json.dumps(document) == before
    assert scrubbed["completions"]["tokens"] == ["a ", "[X]", "", "", " b"]
    assert scrubbed["completions"]["top_logprobs"] == [{}, {}, {}, {}, {}]


def test_dropping_empties_every_piece_list_and_its_alternatives() -> None:
    document = {
        "chat": chat_answer(PIECES),
        "gemini": {
            "logprobsResult": {
                "topCandidates": [{"candidates": [{"token": "x"}]}],
                "chosenCandidates": [{"token": "x"}],
            }
        },
    }
    dropped = drop_piece_runs(document)
    assert _tokens(dropped["chat"]) == []
    assert dropped["gemini"]["logprobsResult"] == {"topCandidates": [], "chosenCandidates": []}
    assert _tokens(document["chat"]) != []


# -- through the pipeline -----------------------------------------------------------------


async def test_a_value_split_across_pieces_is_redacted_in_them(runtime: Runtime) -> None:
    answer = chat_answer(PIECES)
    result = await runtime.protect(answer, direction="response")
    tokens = _tokens(result.payload)
    content = result.payload["choices"][0]["message"]["content"]
    assert EMAIL not in content
    assert "".join(t["token"] for t in tokens) == content.replace(
        content[9 : content.index("]") + 1], "[REDACTED:email]"
    )
    assert [t["token"] for t in tokens] == ["Write", " to", " [REDACTED:email]", "", "", "", " now"]
    for token in tokens:
        assert token["bytes"] == list(token["token"].encode())
    assert [len(t["top_logprobs"]) for t in tokens] == [0] * len(PIECES)
    assert result.summary["byType"] == {"email": 2}  # the content, and the pieces
    serialized = json.dumps(result.payload)
    for fragment in ("jane", ".doe", "@example", "JANE", "@EXAMPLE"):
        assert fragment not in serialized
    assert _tokens(answer)[2]["token"] == " jane"  # the caller's document is unchanged


async def test_alternatives_next_to_a_value_are_emptied_too(runtime: Runtime) -> None:
    """The model weighs a value's pieces a position early: " jane" among the alternatives of
    " to" would tell what the redaction hides."""
    answer = chat_answer(PIECES)
    tokens = _tokens(answer)
    tokens[1]["top_logprobs"] = [{"token": " jane", "logprob": -1.5, "bytes": list(b" jane")}]
    tokens[6]["top_logprobs"] = [{"token": ".org", "logprob": -1.5, "bytes": list(b".org")}]
    result = await runtime.protect(answer, direction="response")
    assert all(t["top_logprobs"] == [] for t in _tokens(result.payload))
    assert "jane" not in json.dumps(result.payload)
    assert [t["token"] for t in _tokens(result.payload)][:2] == ["Write", " to"]


async def test_alternatives_stay_when_nothing_is_found(runtime: Runtime) -> None:
    answer = chat_answer(["Nothing", " to", " see"])
    result = await runtime.protect(answer, direction="response")
    assert [len(t["top_logprobs"]) for t in _tokens(result.payload)] == [1, 1, 1]


async def test_a_blocked_type_in_the_pieces_blocks_the_answer(runtime: Runtime) -> None:
    pieces = ["card ", CARD[:7], CARD[7:14], CARD[14:], " ok"]
    answer = chat_answer(pieces)
    answer["choices"][0]["message"]["content"] = "nothing to see"  # the pieces alone tell
    result = await runtime.protect(answer, direction="response")
    assert result.blocked
    assert result.payload is None


async def test_report_only_counts_the_pieces_and_changes_nothing(tmp_path: Path) -> None:
    runtime = create_runtime(
        {"mode": "report-only", "audit": {"sink": "memory"}, "tokenVault": {"provider": "memory"}}
    )
    answer = chat_answer(PIECES)
    result = await runtime.protect(answer, direction="response")
    assert result.payload == answer
    assert result.summary["byType"] == {"email": 2}


async def test_requests_are_not_read_as_pieces(runtime: Runtime) -> None:
    result = await runtime.protect(chat_answer(PIECES), direction="request")
    assert result.summary["byType"] == {"email": 1}


#: Text around the address, and where to cut the whole into pieces.
AROUND = st.text(alphabet="abc ,.", max_size=12)
CUTS = st.lists(st.integers(min_value=1, max_value=60), max_size=12)


@settings(max_examples=80, deadline=None)
@given(prefix=AROUND, suffix=AROUND, cuts=CUTS)
def test_the_scrubbed_pieces_spell_the_protected_answer(
    tmp_path_factory: pytest.TempPathFactory, prefix: str, suffix: str, cuts: list[int]
) -> None:
    """However the answer is cut into pieces, the scrubbed pieces joined are the protected
    answer, and no piece keeps a character of the address."""
    runtime = create_runtime(
        {"mode": "enforce", "audit": {"sink": "memory"}, "tokenVault": {"provider": "memory"}}
    )
    text = f"{prefix} {EMAIL} {suffix}"
    bounds = sorted({0, len(text), *(c for c in cuts if c < len(text))})
    pieces = [text[a:b] for a, b in itertools.pairwise(bounds)]
    result = asyncio.run(runtime.protect(chat_answer(pieces), direction="response"))
    protected = result.payload["choices"][0]["message"]["content"]
    tokens = _tokens(result.payload)
    assert "".join(t["token"] for t in tokens) == protected
    assert protected == f"{prefix} [REDACTED:email] {suffix}"
    start = len(prefix) + 1
    offset = 0
    for piece, token in zip(pieces, tokens, strict=True):
        covered = offset < start + len(EMAIL) and start < offset + len(piece)
        assert token["bytes"] == list(token["token"].encode())
        assert token["top_logprobs"] == []
        if not covered:
            assert token["token"] == piece
        offset += len(piece)


# -- through the gateway, with the official client -----------------------------------------


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[Gateway]:
    config = {
        "streaming": {"requestMode": "inspect"},
        "responseProtection": {"enabled": True},
        "policy": {"actions": {"email": "redact"}},
    }
    with gateway_in_front(tmp_path, config) as gw:
        yield gw


def test_the_openai_client_gets_scrubbed_logprobs(gateway: Gateway) -> None:
    gateway.upstream.queue(
        Reply(
            body=json.dumps(chat_answer(PIECES)).encode(),
            headers={"content-type": "application/json"},
        )
    )
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="sk-test", max_retries=0)
    completion = client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "hi"}], logprobs=True, top_logprobs=1
    )
    choice = completion.choices[0]
    assert choice.message.content == PROTECTED
    assert choice.logprobs is not None
    assert choice.logprobs.content is not None
    pieces = choice.logprobs.content
    assert "".join(p.token for p in pieces) == PROTECTED
    assert all(bytes(p.bytes or []) == p.token.encode() for p in pieces)
    assert "jane" not in completion.model_dump_json()


def test_an_enforced_stream_carries_no_pieces(gateway: Gateway) -> None:
    frames = []
    for piece in PIECES:
        chunk = {
            "id": "c",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "m",
            "choices": [
                {
                    "index": 0,
                    "delta": {"content": piece},
                    "logprobs": {"content": [_piece(piece)]},
                    "finish_reason": None,
                }
            ],
        }
        frames.append(f"data: {json.dumps(chunk)}\n\n".encode())
    frames.append(b"data: [DONE]\n\n")
    gateway.upstream.queue(Reply(wire=frames, headers={"content-type": "text/event-stream"}))
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="sk-test", max_retries=0)
    stream = client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "hi"}], stream=True, logprobs=True
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == PROTECTED
    for chunk in chunks:
        for choice in chunk.choices:
            assert choice.logprobs is None or not choice.logprobs.content
    assert "jane" not in "".join(c.model_dump_json() for c in chunks)


# -- adjacent text parts -------------------------------------------------------------------


def _parts(*texts: str) -> list[dict[str, Any]]:
    return [{"type": "text", "text": text} for text in texts]


def _request(content: list[dict[str, Any]]) -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "user", "content": content}]}


def _texts(document: dict[str, Any]) -> list[str]:
    return [part.get("text") for part in document["messages"][0]["content"]]


async def test_a_value_cut_across_text_parts_of_a_request_is_redacted(runtime: Runtime) -> None:
    result = await runtime.protect(
        _request(_parts("mail jane.do", "e@example", ".com now")), direction="request"
    )
    assert _texts(result.payload) == ["mail [REDACTED:email]", "", " now"]
    assert result.summary["byType"] == {"email": 1}


async def test_a_value_inside_one_part_is_counted_once(runtime: Runtime) -> None:
    result = await runtime.protect(_request(_parts("hi ", f"mail {EMAIL}", " bye")))
    assert result.summary["byType"] == {"email": 1}
    text = _texts(result.payload)[1]
    assert text.startswith("mail [TOKEN:tok_email_")  # the policy's own action still applies


async def test_a_part_rewritten_for_a_cut_value_keeps_its_own_findings_protected(
    runtime: Runtime,
) -> None:
    parts = _parts("x@example.org then jane.do", "e@example.com")
    result = await runtime.protect(_request(parts), direction="request")
    assert _texts(result.payload) == ["[REDACTED:email] then [REDACTED:email]", ""]
    assert result.summary["byType"] == {"email": 2}
    assert "x@example.org" not in json.dumps(result.payload)


async def test_parts_apart_are_not_joined(runtime: Runtime) -> None:
    image = {"type": "image_url", "image_url": {"url": "https://example.org/a.png"}}
    content = [*_parts("jane.doe@exa"), image, *_parts("mple.com")]
    result = await runtime.protect(_request(content), direction="request")
    assert result.summary["byType"] == {}


async def test_a_card_cut_across_parts_blocks(runtime: Runtime) -> None:
    result = await runtime.protect(_request(_parts("pay with 4111 1111", " 1111 1111 ok")))
    assert result.blocked


@settings(max_examples=60, deadline=None)
@given(prefix=AROUND, suffix=AROUND, cuts=CUTS)
def test_cut_text_parts_read_as_the_protected_text(
    prefix: str, suffix: str, cuts: list[int]
) -> None:
    """However a request's text is cut into parts, the protected parts joined read as the
    protected text."""
    runtime = create_runtime(
        {"mode": "enforce", "audit": {"sink": "memory"}, "tokenVault": {"provider": "memory"}}
    )
    text = f"{prefix} {EMAIL} {suffix}"
    bounds = sorted({0, len(text), *(c for c in cuts if c < len(text))})
    parts = _parts(*(text[a:b] for a, b in itertools.pairwise(bounds)))
    result = asyncio.run(runtime.protect(_request(parts), direction="request"))
    assert "".join(_texts(result.payload)) == f"{prefix} [REDACTED:email] {suffix}"
    assert result.summary["byType"] == {"email": 1}


def test_the_upstream_never_sees_a_value_cut_across_parts(gateway: Gateway) -> None:
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="sk-test", max_retries=0)
    client.chat.completions.create(
        model="m",
        messages=[{"role": "user", "content": _parts("write to jane.", "doe@exam", "ple.com")}],
    )
    sent = gateway.upstream.last.json()["messages"][0]["content"]
    assert [part["text"] for part in sent] == ["write to [REDACTED:email]", "", ""]


@given(
    pieces=st.lists(st.text(alphabet="ab", max_size=4), min_size=1, max_size=8),
    data=st.data(),
)
def test_covered_pieces_are_found_by_bisection_exactly(
    pieces: list[str], data: st.DataObject
) -> None:
    """The pieces a span overlaps, found by bisection (empty pieces included), are the ones
    a scan of every piece finds."""
    run = PieceRun(("parts",), 0, tuple(pieces), "text")
    size = len(run.text)
    if size == 0:
        return
    start = data.draw(st.integers(0, size - 1))
    end = data.draw(st.integers(start + 1, size))
    offsets = run.offsets
    expected = [
        index
        for index in range(len(pieces))
        if offsets[index] < end and start < offsets[index + 1] and pieces[index]
    ]
    covered = [index for index in run.covered(start, end) if pieces[index]]
    assert covered == expected


async def test_a_finding_of_one_token_piece_alone_rewrites_its_bytes_too(
    runtime: Runtime,
) -> None:
    # Joined, "call 1" + "010-1234-5678" reads as one longer number that is no phone
    # number; the piece alone is one. Its bytes must not keep the digits.
    answer = chat_answer(["call 1", "010-1234-5678", " now"])
    answer["choices"][0]["message"]["content"] = "no number here"
    result = await runtime.protect(answer, direction="response")
    tokens = _tokens(result.payload)
    assert "1234" not in tokens[1]["token"]
    assert tokens[1]["bytes"] == list(tokens[1]["token"].encode())
    assert tokens[1]["top_logprobs"] == []
    assert "1234" not in json.dumps(result.payload)


# -- prompts given as pieces (llama.cpp) ------------------------------------------------------


def test_prompt_pieces_are_joined_where_llama_cpp_reads_one_prompt() -> None:
    halves = ["jane.", "doe@example.com"]
    request = {
        "prompt": [["x", *halves], "batch one", "batch two"],
        "input_prefix": halves,
        "input_suffix": ["a", 7, *halves],
        "nested": {"prompt_string": halves},
    }
    found = {(run.path, run.start): run.text for run in find_piece_runs(request, answer=False)}
    assert found == {
        (("prompt", 0), 0): "xjane.doe@example.com",
        (("input_prefix",), 0): EMAIL,
        (("input_suffix",), 2): EMAIL,
        (("nested", "prompt_string"), 0): EMAIL,
    }
    # A list of strings alone under prompt or input is a batch of separate prompts.
    assert find_piece_runs({"prompt": halves, "input": halves}, answer=False) == []
    assert find_piece_runs({"prompt": [*halves, 5]}, answer=False)[0].text == EMAIL
    assert find_piece_runs({"input_prefix": halves}, answer=True) == []


@settings(max_examples=60, deadline=None)
@given(prefix=AROUND, suffix=AROUND, cuts=CUTS)
def test_cut_prompt_pieces_read_as_the_protected_prompt(
    prefix: str, suffix: str, cuts: list[int]
) -> None:
    runtime = create_runtime(
        {"mode": "enforce", "audit": {"sink": "memory"}, "tokenVault": {"provider": "memory"}}
    )
    text = f"{prefix} {EMAIL} {suffix}"
    bounds = sorted({0, len(text), *(c for c in cuts if c < len(text))})
    pieces = [text[a:b] for a, b in itertools.pairwise(bounds)]
    request = {"prompt": {"prompt_string": pieces}}
    result = asyncio.run(runtime.protect(request, direction="request"))
    assert "".join(result.payload["prompt"]["prompt_string"]) == (
        f"{prefix} [REDACTED:email] {suffix}"
    )
    assert result.summary["byType"] == {"email": 1}


def test_llama_cpp_never_reads_a_value_cut_across_prompt_pieces(tmp_path: Path) -> None:
    with gateway_in_front(tmp_path, {"target": {"type": "llama-cpp"}}) as llama:
        card = {"prompt": {"prompt_string": ["pay 4111 1111", " 1111 1111 now"]}}
        refused = httpx.post(f"{llama.url}/completion", json=card)
        assert refused.status_code == 403
        assert refused.json()["error"] == "haechi_policy_block"
        infill = {"input_prefix": ["# mail jane.", "doe@example.com"], "input_suffix": ""}
        httpx.post(f"{llama.url}/infill", json=infill)
        assert llama.upstream.last.json()["input_prefix"] == ["# mail [REDACTED:email]", ""]
        assert len(llama.upstream.received) == 1


@pytest.mark.parametrize("action", ["redact", "mask"])
def test_a_run_under_a_key_that_is_a_value_is_rewritten(action: str) -> None:
    """The key on the way to a run is rewritten too, after the run, which is found by the
    path as it was: the payload is protected instead of failing closed."""
    runtime = create_runtime(
        {
            "mode": "enforce",
            "policy": {"actions": {"email": action}},
            "audit": {"sink": "memory"},
            "tokenVault": {"provider": "memory"},
        }
    )
    parts = _parts("mail jane.", "doe@example.com")
    result = asyncio.run(runtime.protect({EMAIL: parts, "p": [["x", EMAIL]]}))
    assert not result.blocked
    assert EMAIL not in json.dumps(result.payload)
    ((key, value),) = [(k, v) for k, v in result.payload.items() if k != "p"]
    assert key != EMAIL
    assert "".join(part["text"] for part in value) == "mail [REDACTED:email]"
