# SPDX-License-Identifier: Apache-2.0
"""A protected answer keeps no token id of a value it redacted, whatever the route.

Token ids spell text for anyone holding the model's tokenizer. llama.cpp names the
vocabulary entry of every log-probability piece (``id``, in the piece and in each of its
alternatives, which it writes under ``top_probs`` when asked for ``post_sampling_probs``),
and Gemini names it ``tokenId``: a piece list with a finding must keep none of them. vLLM
answers paths the adapter does not know (``/invocations``, ``/v1/chat/completions/batch``)
like its chat route, so their answers lose the same token-id members. Every test runs the
gateway on a real socket in front of a stand-in upstream that answers like the real server.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.upstream_server import Gateway, Reply, gateway_in_front

EMAIL = "jane.doe@example.com"
#: An answer as llama.cpp's tokenizer cuts it: each piece with its vocabulary id.
PIECES = [
    ("Write", 16594),
    (" to", 10381),
    (" jane", 13159),
    (".doe", 51465),
    ("@example", 74758),
    (".com", 91631),
    (" now", 12471),
]
ANSWER = "".join(text for text, _ in PIECES)
PROTECTED = "Write to [REDACTED:email] now"
#: The ids of the pieces the address covers, and the text they hold.
COVERED_IDS = frozenset(tok for text, tok in PIECES[2:6])
FRAGMENTS = ("jane", "doe", "example")
PROTECT = {
    "streaming": {"requestMode": "inspect"},
    "responseProtection": {"enabled": True},
    "policy": {"actions": {"email": "redact"}},
}
JSON = {"content-type": "application/json"}
SSE = {"content-type": "text/event-stream"}


def _entry(text: str, tok: int, post_sampling: bool, prob: float) -> dict[str, Any]:
    """One vocabulary entry as llama.cpp writes it (``completion_token_output::to_json``)."""
    key, value = ("prob", prob) if post_sampling else ("logprob", prob - 1)
    return {"id": tok, "token": text, "bytes": list(text.encode()), key: value}


def _llama_pieces(pieces: list[tuple[str, int]], post_sampling: bool) -> list[dict[str, Any]]:
    """``probs_vector_to_json``: each piece with its alternatives, among them the piece the
    model picks next (the model weighs it a position early)."""
    top = "top_probs" if post_sampling else "top_logprobs"
    listed = []
    for (text, tok), (after, after_tok) in zip(pieces, [*pieces[1:], ("?", 30)], strict=True):
        alternatives = [
            _entry(text, tok, post_sampling, 0.9),
            _entry(after, after_tok, post_sampling, 0.1),
        ]
        listed.append({**_entry(text, tok, post_sampling, 0.9), top: alternatives})
    return listed


def _native(pieces: list[dict[str, Any]], text: str) -> dict[str, Any]:
    return {"content": text, "completion_probabilities": pieces, "stop": True}


def _chat(pieces: list[dict[str, Any]], text: str) -> dict[str, Any]:
    message = {"role": "assistant", "content": text}
    choice = {"index": 0, "message": message, "logprobs": {"content": pieces}}
    return {
        "id": "c",
        "object": "chat.completion",
        "choices": [{**choice, "finish_reason": "stop"}],
    }


def _completions(pieces: list[dict[str, Any]], text: str) -> dict[str, Any]:
    choice = {"index": 0, "text": text, "logprobs": {"content": pieces}, "finish_reason": "stop"}
    return {"id": "c", "object": "text_completion", "choices": [choice]}


#: Makes an answer of pieces and their text; reads a text or the pieces back from one.
Answer = Callable[[list[dict[str, Any]], str], dict[str, Any]]
Read = Callable[[Any], Any]
#: Each llama.cpp route that returns pieces: its request, its answer, and how to read the
#: answer's text and pieces back.
ROUTES: dict[str, tuple[dict[str, Any], Answer, Read, Read]] = {
    "/completion": (
        {"prompt": "hi", "n_probs": 2},
        _native,
        lambda doc: doc["content"],
        lambda doc: doc["completion_probabilities"],
    ),
    "/v1/chat/completions": (
        {"model": "m", "messages": [{"role": "user", "content": "hi"}], "logprobs": True},
        _chat,
        lambda doc: doc["choices"][0]["message"]["content"],
        lambda doc: doc["choices"][0]["logprobs"]["content"],
    ),
    "/v1/completions": (
        {"model": "m", "prompt": "hi", "logprobs": 2},
        _completions,
        lambda doc: doc["choices"][0]["text"],
        lambda doc: doc["choices"][0]["logprobs"]["content"],
    ),
}


def _numbers(document: Any) -> set[int]:
    """Every integer anywhere in ``document`` (booleans aside)."""
    found: set[int] = set()
    stack = [document]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, int) and not isinstance(node, bool):
            found.add(node)
    return found


def _assert_nothing_spells_the_address(raw: str) -> None:
    assert not any(fragment in raw for fragment in FRAGMENTS)
    assert not _numbers(json.loads(raw)) & COVERED_IDS


def _stream_frames(path: str, post_sampling: bool) -> list[bytes]:
    """The answer streamed as llama.cpp streams it: one piece per frame, with its own
    log-probabilities (``probs_vector_to_json({prob_output})``)."""
    frames = []
    for piece, (text, _) in zip(_llama_pieces(PIECES, post_sampling), PIECES, strict=True):
        if path == "/completion":
            frame: dict[str, Any] = {
                "content": text,
                "stop": False,
                "completion_probabilities": [piece],
            }
        else:
            delta = {"delta": {"content": text}} if "chat" in path else {"text": text}
            choice = {"index": 0, **delta, "logprobs": {"content": [piece]}}
            frame = {"id": "c", "choices": [{**choice, "finish_reason": None}]}
        frames.append(f"data: {json.dumps(frame)}\n\n".encode())
    done = '{"content": "", "stop": true}' if path == "/completion" else "[DONE]"
    return [*frames, f"data: {done}\n\n".encode()]


@pytest.fixture(scope="module")
def llama(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    config = {"target": {"type": "llama-cpp"}, **PROTECT}
    with gateway_in_front(tmp_path_factory.mktemp("llama"), config) as gateway:
        yield gateway


@pytest.mark.parametrize("post_sampling", [True, False], ids=["top_probs", "top_logprobs"])
@pytest.mark.parametrize("path", list(ROUTES))
def test_llama_cpp_pieces_of_a_redacted_value_keep_no_id_or_alternative(
    llama: Gateway, path: str, post_sampling: bool
) -> None:
    """Streamed or not, no piece, alternative or id spells the address; an answer with
    nothing found keeps its ids and alternatives."""
    request, answer, content_of, pieces_of = ROUTES[path]
    request = {**request, "post_sampling_probs": post_sampling}
    top = "top_probs" if post_sampling else "top_logprobs"
    url = f"{llama.url}{path}"
    leaky = answer(_llama_pieces(PIECES, post_sampling), ANSWER)
    llama.upstream.queue(Reply(body=json.dumps(leaky).encode(), headers=JSON))
    response = httpx.post(url, json=request)
    assert response.status_code == 200
    document = response.json()
    assert content_of(document) == PROTECTED
    pieces = pieces_of(document)
    assert "".join(piece["token"] for piece in pieces) == PROTECTED
    assert all(piece[top] == [] for piece in pieces)
    assert all("id" not in piece for piece in pieces)
    assert all(piece["bytes"] == list(piece["token"].encode()) for piece in pieces)
    _assert_nothing_spells_the_address(response.text)

    frames = _stream_frames(path, post_sampling)
    llama.upstream.queue(Reply(wire=frames, headers=SSE))
    streamed = httpx.post(url, json={**request, "stream": True})
    assert streamed.status_code == 200
    assert "REDACTED:email" in streamed.text
    _assert_nothing_spells_the_address_in_frames(streamed.text)

    clean = [("Nothing", 17), (" here", 18)]
    untouched = json.dumps(answer(_llama_pieces(clean, post_sampling), "Nothing here"))
    llama.upstream.queue(Reply(body=untouched.encode(), headers=JSON))
    assert httpx.post(url, json=request).text == untouched


def _assert_nothing_spells_the_address_in_frames(stream: str) -> None:
    for line in stream.splitlines():
        if line.startswith("data:") and line[5:].strip() != "[DONE]":
            _assert_nothing_spells_the_address(line[5:])


def test_gemini_chosen_candidates_of_a_redacted_value_keep_no_token_id(tmp_path: Path) -> None:
    chosen = [{"token": text, "tokenId": tok, "logProbability": -0.1} for text, tok in PIECES]
    answer = {
        "candidates": [
            {
                "content": {"parts": [{"text": ANSWER}], "role": "model"},
                "finishReason": "STOP",
                "logprobsResult": {
                    "topCandidates": [{"candidates": [piece]} for piece in chosen],
                    "chosenCandidates": chosen,
                },
            }
        ],
        "modelVersion": "gemini-2.0-flash",
    }
    config = {"target": {"type": "gemini"}, **PROTECT}
    with gateway_in_front(tmp_path, config) as gateway:
        gateway.upstream.queue(Reply(body=json.dumps(answer).encode(), headers=JSON))
        url = f"{gateway.url}/v1beta/models/gemini-2.0-flash:generateContent"
        body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
        response = httpx.post(url, json=body)
    assert response.status_code == 200
    candidate = response.json()["candidates"][0]
    assert candidate["content"]["parts"][0]["text"] == PROTECTED
    chosen_out = candidate["logprobsResult"]["chosenCandidates"]
    assert "".join(piece["token"] for piece in chosen_out) == PROTECTED
    assert all("tokenId" not in piece for piece in chosen_out)
    _assert_nothing_spells_the_address(response.text)


def _vllm_answer(**choice: Any) -> dict[str, Any]:
    message = {"role": "assistant", "content": ANSWER}
    answer_choice = {"index": 0, "message": message, "finish_reason": "stop", **choice}
    return {"id": "c", "object": "chat.completion", "model": "m", "choices": [answer_choice]}


@pytest.mark.parametrize("path", ["/invocations", "/v1/chat/completions/batch"])
def test_vllm_answers_on_paths_the_adapter_does_not_know_lose_their_token_ids(
    tmp_path: Path, path: str
) -> None:
    """vLLM serves these paths like its chat route: the answer's ``token_ids``, and
    ``logprobs`` written as ids, go as they go on ``/v1/chat/completions``."""
    ids = [tok for _, tok in PIECES]
    spelled = [{"token": f"token_id:{tok}", "logprob": -0.1, "top_logprobs": []} for tok in ids]
    request = {
        "model": "m",
        "messages": [{"role": "user", "content": "hi"}],
        "logprobs": True,
        "return_token_ids": True,
        "return_tokens_as_token_ids": True,
    }
    config = {"target": {"type": "vllm-openai"}, **PROTECT}
    with gateway_in_front(tmp_path, config) as gateway:
        for answer in (_vllm_answer(token_ids=ids), _vllm_answer(logprobs={"content": spelled})):
            gateway.upstream.queue(Reply(body=json.dumps(answer).encode(), headers=JSON))
            response = httpx.post(f"{gateway.url}{path}", json=request)
            assert response.status_code == 200
            choice = response.json()["choices"][0]
            assert choice["message"]["content"] == PROTECTED
            assert "token_ids" not in choice
            assert choice.get("logprobs") is None
            _assert_nothing_spells_the_address(response.text)
            assert "token_id:" not in response.text


def test_an_unknown_path_loses_the_token_ids_of_any_adapter(tmp_path: Path) -> None:
    """An OpenAI-compatible target may be any server: llama.cpp answers ``/completion``,
    which that adapter does not know, with its ``tokens``."""
    answer = {"content": ANSWER, "tokens": [tok for _, tok in PIECES], "stop": True}
    with gateway_in_front(tmp_path, PROTECT) as gateway:
        gateway.upstream.queue(Reply(body=json.dumps(answer).encode(), headers=JSON))
        response = httpx.post(f"{gateway.url}/completion", json={"prompt": "hi"})
    assert response.status_code == 200
    assert response.json() == {"content": PROTECTED, "stop": True}


def _sglang_generate_answer(pieces_as_text: bool) -> dict[str, Any]:
    """SGLang's ``/generate`` answer (its ``tokenizer_manager``): the text, its ids, and with
    ``return_logprob`` each piece as ``[logprob, id, text]`` (``None`` for the text unless
    ``return_text_in_logprobs``) and its alternatives the same way."""
    logprobs = [[-0.1, tok, text if pieces_as_text else None] for text, tok in PIECES]
    meta = {
        "id": "r",
        "finish_reason": {"type": "stop", "matched": 2},
        "prompt_tokens": 2,
        "completion_tokens": len(PIECES),
        "output_token_logprobs": logprobs,
        "output_top_logprobs": [[entry] for entry in logprobs],
        "output_token_ids_logprobs": [[entry] for entry in logprobs],
    }
    return {"text": ANSWER, "output_ids": [tok for _, tok in PIECES], "meta_info": meta}


@pytest.mark.parametrize("batch", [False, True])
@pytest.mark.parametrize("pieces_as_text", [False, True])
def test_sglang_generate_answers_lose_their_token_ids(
    tmp_path: Path, batch: bool, pieces_as_text: bool
) -> None:
    """SGLang serves ``/generate`` beside its OpenAI routes, and every answer of it carries
    the text again as ``output_ids``, which the tokenizer reads back into the address."""
    one = _sglang_generate_answer(pieces_as_text)
    answer: Any = [one, one] if batch else one
    request = {"text": "hi", "return_logprob": True, "top_logprobs_num": 1}
    with gateway_in_front(tmp_path, PROTECT) as gateway:
        gateway.upstream.queue(Reply(body=json.dumps(answer).encode(), headers=JSON))
        response = httpx.post(f"{gateway.url}/generate", json=request)
    assert response.status_code == 200
    answers = response.json() if batch else [response.json()]
    for each in answers:
        assert each["text"] == PROTECTED
        assert "output_ids" not in each
        assert set(each["meta_info"]) == {
            "id",
            "finish_reason",
            "prompt_tokens",
            "completion_tokens",
        }
    _assert_nothing_spells_the_address(response.text)


@pytest.mark.parametrize("adapter", ["openai-compatible", "vllm-openai", "llama-cpp"])
@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/completions"])
def test_sglang_output_ids_leave_openai_answers(tmp_path: Path, adapter: str, path: str) -> None:
    """SGLang adds the answer's ids to a chat or completions answer in ``sglext`` when the
    request asks with ``return_output_ids_in_sglext``."""
    ids = [[tok for _, tok in PIECES]]
    chat = path == "/v1/chat/completions"
    choice = {"index": 0, "text": ANSWER, "finish_reason": "stop"}
    answer = {**(_vllm_answer() if chat else {"choices": [choice]}), "sglext": {"output_ids": ids}}
    request = {"model": "m", "messages": [], "prompt": "hi", "return_output_ids_in_sglext": True}
    config = {"target": {"type": adapter}, **PROTECT}
    with gateway_in_front(tmp_path, config) as gateway:
        gateway.upstream.queue(Reply(body=json.dumps(answer).encode(), headers=JSON))
        response = httpx.post(f"{gateway.url}{path}", json=request)
    assert response.status_code == 200
    answered = response.json()["choices"][0]
    assert (answered["message"]["content"] if chat else answered["text"]) == PROTECTED
    assert response.json()["sglext"] == {}
    _assert_nothing_spells_the_address(response.text)


@pytest.mark.parametrize("adapter", ["llama-cpp", "openai-compatible"])
@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/completions"])
def test_llama_cpp_verbose_answers_keep_no_token_ids(
    tmp_path: Path, adapter: str, path: str
) -> None:
    """Asked with ``verbose`` (and ``return_tokens``), llama.cpp's OpenAI routes add their
    native answer as ``__verbose``, whose ``tokens`` are the ids of the whole answer."""
    native = {
        "index": 0,
        "content": ANSWER,
        "tokens": [tok for _, tok in PIECES],
        "stop": True,
        "tokens_predicted": len(PIECES),
    }
    chat = path == "/v1/chat/completions"
    choice = {"index": 0, "text": ANSWER, "logprobs": None, "finish_reason": "stop"}
    answer = {**(_vllm_answer() if chat else {"choices": [choice]}), "__verbose": native}
    request = {"model": "m", "messages": [], "prompt": "hi", "verbose": True, "return_tokens": True}
    with gateway_in_front(tmp_path, {"target": {"type": adapter}, **PROTECT}) as gateway:
        gateway.upstream.queue(Reply(body=json.dumps(answer).encode(), headers=JSON))
        response = httpx.post(f"{gateway.url}{path}", json=request)
    assert response.status_code == 200
    assert "__verbose" not in response.json()
    answered = response.json()["choices"][0]
    assert (answered["message"]["content"] if chat else answered["text"]) == PROTECTED
    _assert_nothing_spells_the_address(response.text)


#: Text around the address, and where to cut the whole into pieces.
AROUND = st.text(alphabet="abc ,.", max_size=12)
CUTS = st.lists(st.integers(min_value=1, max_value=60), max_size=12)


@settings(max_examples=40, deadline=None)
@given(prefix=AROUND, suffix=AROUND, cuts=CUTS, post_sampling=st.booleans())
def test_however_the_answer_is_cut_no_id_of_the_address_survives(
    llama: Gateway, prefix: str, suffix: str, cuts: list[int], post_sampling: bool
) -> None:
    """Whatever pieces the tokenizer cuts the address into, the answer keeps no id of them
    and its pieces spell the protected answer."""
    text = f"{prefix} {EMAIL} {suffix}"
    bounds = sorted({0, len(text), *(c for c in cuts if c < len(text))})
    cut = [text[a:b] for a, b in itertools.pairwise(bounds)]
    pieces = [(piece, 40000 + index) for index, piece in enumerate(cut)]
    start, end = len(prefix) + 1, len(prefix) + 1 + len(EMAIL)
    offsets = [0, *itertools.accumulate(map(len, cut))]
    bounds_of = itertools.pairwise(offsets)
    covered = {
        tok for (_, tok), (a, b) in zip(pieces, bounds_of, strict=True) if a < end and start < b
    }
    answer = _native(_llama_pieces(pieces, post_sampling), text)
    llama.upstream.queue(Reply(body=json.dumps(answer).encode(), headers=JSON))
    request = {"prompt": "hi", "n_probs": 2, "post_sampling_probs": post_sampling}
    response = httpx.post(f"{llama.url}/completion", json=request)
    document = response.json()
    protected = f"{prefix} [REDACTED:email] {suffix}"
    assert document["content"] == protected
    assert "".join(p["token"] for p in document["completion_probabilities"]) == protected
    assert not _numbers(document) & covered
    assert EMAIL not in response.text
