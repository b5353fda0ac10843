# SPDX-License-Identifier: Apache-2.0
"""Text written as token ids: the ids leave protected answers, and requests that carry them
are refused unless the configuration relays them.

A client holding the model's tokenizer reads token ids back into text, so ids of a redacted
answer would carry the value the gateway took out, and ids in a request reach the model
uninspected. Ollama's ``context`` in answers is covered with the Ollama client in
``test_proxy_clients``; here llama.cpp's ``tokens``, vLLM's ``token_ids`` and its
log-probabilities written as ids, streamed and not, and the request side, through a gateway
on a real socket.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import ollama
import openai
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from haechi.protocols.token_ids import TokenIdFields, holds_token_ids
from tests.upstream_server import Reply, SharedGateways, gateway_in_front

EMAIL = "jane.doe@example.com"
ANSWER = f"write to {EMAIL}"
REDACTED = "write to [REDACTED:email]"
PROTECTED = {"streaming": {"requestMode": "inspect"}, "responseProtection": {"enabled": True}}
JSON_TYPE = {"content-type": "application/json"}


def _events(text: str) -> list[dict[str, Any]]:
    return [
        json.loads(line[5:])
        for line in text.splitlines()
        if line.startswith("data:") and line[5:].strip() != "[DONE]"
    ]


def test_llama_cpp_frames_lose_their_token_ids(tmp_path: Path) -> None:
    config = {"target": {"type": "llama-cpp"}, **PROTECTED}
    with gateway_in_front(tmp_path, config) as gateway:
        gateway.upstream.queue(Reply(text=ANSWER))
        body = {"prompt": "hi", "stream": True}
        streamed = httpx.post(f"{gateway.url}/completion", json=body)
        frames = _events(streamed.text)
        assert "".join(frame["content"] for frame in frames) == REDACTED
        assert all("tokens" not in frame for frame in frames)
        gateway.upstream.queue(Reply(text=ANSWER))
        body = {"prompt": "hi", "return_tokens": True}
        whole = httpx.post(f"{gateway.url}/completion", json=body).json()
        assert whole["content"] == REDACTED
        assert "tokens" not in whole


def test_vllm_choices_lose_their_token_ids(tmp_path: Path) -> None:
    config = {"target": {"type": "vllm-openai"}, **PROTECTED}
    chat = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    with gateway_in_front(tmp_path, config) as gateway:
        gateway.upstream.queue(Reply(text=ANSWER))
        body = {**chat, "return_token_ids": True}
        whole = httpx.post(f"{gateway.url}/v1/chat/completions", json=body).json()
        assert whole["choices"][0]["message"]["content"] == REDACTED
        assert "token_ids" not in whole["choices"][0]
        gateway.upstream.queue(Reply(text=ANSWER))
        body = {**chat, "return_token_ids": True, "stream": True}
        streamed = httpx.post(f"{gateway.url}/v1/chat/completions", json=body)
        chunks = _events(streamed.text)
        text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
        assert text == REDACTED
        assert "token_ids" not in streamed.text


def test_token_ids_stay_in_dry_run(tmp_path: Path) -> None:
    """Ids beside the answer, and log-probability pieces written as ids."""
    config = {
        "target": {"type": "vllm-openai"},
        "responseProtection": {"enabled": True, "mode": "dry-run"},
    }
    with gateway_in_front(tmp_path, config) as gateway:
        gateway.upstream.queue(Reply(text="ok"))
        body = {
            "model": "m",
            "messages": [{"role": "user", "content": "hi"}],
            "return_token_ids": True,
            "logprobs": True,
            "return_tokens_as_token_ids": True,
        }
        whole = httpx.post(f"{gateway.url}/v1/chat/completions", json=body).json()
        assert whole["choices"][0]["token_ids"] == [ord(char) for char in "ok"]
        pieces = whole["choices"][0]["logprobs"]["content"]
        assert [piece["token"] for piece in pieces] == ["token_id:111", "token_id:107"]


def test_vllm_logprobs_written_as_token_ids_are_left_out(tmp_path: Path) -> None:
    """vLLM's ``return_tokens_as_token_ids`` writes every log-probability piece as an id,
    which a client with the tokenizer reads back into the redacted value: the official
    client gets the protected answer with ``logprobs`` null, streamed and not."""
    config = {"target": {"type": "vllm-openai"}, **PROTECTED}
    asked = {"logprobs": True, "top_logprobs": 1}
    extra = {"return_tokens_as_token_ids": True}
    with gateway_in_front(tmp_path, config) as gateway:
        client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="k", max_retries=0)
        messages: Any = [{"role": "user", "content": "hi"}]
        gateway.upstream.queue(Reply(text=ANSWER))
        whole = client.chat.completions.create(
            model="m", messages=messages, extra_body=extra, **asked
        )
        assert whole.choices[0].message.content == REDACTED
        assert whole.choices[0].logprobs is None
        gateway.upstream.queue(Reply(text=ANSWER))
        stream = client.chat.completions.create(
            model="m", messages=messages, stream=True, extra_body=extra, **asked
        )
        chunks = list(stream)
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text == REDACTED
        assert all(c.choices[0].logprobs is None for c in chunks if c.choices)
        sent = [json.loads(r.body) for r in gateway.upstream.received]
        assert all(body["return_tokens_as_token_ids"] is True for body in sent)


def test_logprobs_written_as_text_are_kept_and_protected(tmp_path: Path) -> None:
    """Pieces written as text are read (joined) and kept: the value is gone from them."""
    config = {"target": {"type": "vllm-openai"}, **PROTECTED}
    with gateway_in_front(tmp_path, config) as gateway:
        gateway.upstream.queue(Reply(text=ANSWER))
        body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "logprobs": True}
        response = httpx.post(f"{gateway.url}/v1/chat/completions", json=body)
        pieces = response.json()["choices"][0]["logprobs"]["content"]
        assert "".join(piece["token"] for piece in pieces) == REDACTED
        assert EMAIL not in response.text


_JSON = st.recursive(
    st.none()
    | st.integers()
    | st.text(max_size=5)
    | st.integers(min_value=0).map(lambda n: f"token_id:{n}"),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(["a", "tokens", "context", "logprobs", "b", "token_id:7"]),
            inner,
            max_size=4,
        )
    ),
    max_leaves=20,
)
_FIELDS = TokenIdFields(opaque=frozenset({"tokens", "context"}), spelled=frozenset({"logprobs"}))


def _named(document: Any, name: str) -> list[Any]:
    """The values of every member called ``name`` in ``document``."""
    found, stack = [], [document]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            found.extend(value for key, value in node.items() if key == name)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found


@settings(max_examples=300, deadline=None)
@given(document=_JSON, escaped=st.booleans())
def test_scrub_leaves_no_token_ids_anywhere(document: Any, escaped: bool) -> None:
    """With or without the text the document was parsed from: a name or an id the text
    spells only through an escape (``"tok\\u0065ns"``, ``"token\\u005fid:1"``) is found
    too. What is left under ``logprobs`` spells no id; everything else is untouched."""
    before = json.dumps(document)
    text = before
    if escaped:
        text = text.replace('"tokens"', '"tok\\u0065ns"').replace("token_id:", "token\\u005fid:")
    assert json.loads(text) == document
    changed = _FIELDS.scrub(document, text)
    after = json.dumps(document)
    assert '"tokens"' not in after
    assert '"context"' not in after
    for value in _named(document, "logprobs"):
        assert value is None or "token_id:" not in json.dumps(value)
    assert changed == (before != after)


def test_scrub_walks_deeper_than_the_recursion_limit() -> None:
    document: Any = {"context": [1], "logprobs": {"tokens": ["token_id:3"]}}
    for _ in range(5000):
        document = {"a": [document]}
    fields = TokenIdFields(opaque=frozenset({"context"}), spelled=frozenset({"logprobs"}))
    assert fields.scrub(document)
    assert fields.scrub(document) is False


def test_completions_logprobs_with_ids_as_keys_are_left_out() -> None:
    """The completions API writes alternatives as objects keyed by the piece."""
    document = {
        "choices": [
            {
                "text": "ok",
                "logprobs": {"tokens": ["o", "k"], "top_logprobs": [{"token_id:5": -0.1}]},
            }
        ]
    }
    assert TokenIdFields(spelled=frozenset({"logprobs"})).scrub(document, json.dumps(document))
    assert document["choices"][0] == {"text": "ok", "logprobs": None}


@pytest.mark.parametrize(
    "fields",
    [
        TokenIdFields(),
        TokenIdFields(opaque=frozenset({"x"})),
        TokenIdFields(spelled=frozenset({"c"})),
    ],
)
def test_scrub_without_a_match_changes_nothing(fields: TokenIdFields) -> None:
    document = {"a": [{"b": 1}], "c": "x token_id:"}
    assert fields.scrub(document) is False
    assert document == {"a": [{"b": 1}], "c": "x token_id:"}


@pytest.mark.parametrize("key", ["Context", "CONTEXT", "conTEXT"])
def test_ollama_context_in_any_letter_case_leaves_the_answer(
    shared_gateway: SharedGateways, key: str
) -> None:
    """Ollama's Go client binds ``"Context"`` to ``context`` (the last of several wins): the
    ids of an answer whose address was redacted go out under no spelling of the name."""
    config = {"target": {"type": "ollama"}, "responseProtection": {"enabled": True}}
    answer = {"model": "m", "response": ANSWER, "done": True, "context": [1], key: [2, 3]}
    gateway = shared_gateway(config)
    gateway.upstream.queue(Reply(body=json.dumps(answer).encode(), headers=JSON_TYPE))
    body = {"model": "m", "prompt": "hi", "stream": False}
    response = httpx.post(f"{gateway.url}/api/generate", json=body)
    assert response.status_code == 200
    assert response.json() == {"model": "m", "response": REDACTED, "done": True}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '{"CONTEXT": [1], "a": {"LogProbs": {"content": [{"token": "token_id:3"}]}}}',
            {"a": {"LogProbs": None}},
        ),
        ('{"a": {"to\\u212aens": [1], "LOGPROBS": ["token_id:3"]}}', {"a": {"LOGPROBS": None}}),
        (
            '{"a": {"to\u212aens": [1], "logprob\u017f": ["token_id:3"]}}',
            {"a": {"logprob\u017f": None}},
        ),
    ],
)
def test_scrub_takes_out_every_spelling_a_lenient_decoder_binds(
    text: str, expected: dict[str, Any]
) -> None:
    """In any letter case, ASCII or not (the Kelvin sign is ``K`` to Go, the long s ``S``),
    escaped or not, with the text to spare the walk or without it."""
    for parsed_from in (text, None):
        document = json.loads(text)
        assert _FIELDS.scrub(document, parsed_from)
        assert document == expected
        assert _FIELDS.scrub(document, json.dumps(document)) is False


# -- token ids in requests --------------------------------------------------------------------


def _refusals(gateway: Any) -> list[str]:
    return [r["reason"] for r in gateway.audit() if r.get("decision") == "token_ids_refused"]


def test_token_id_prompts_are_refused_before_the_upstream(tmp_path: Path) -> None:
    """Token ids spell text detection cannot read: the official client gets a 403, the
    upstream is never reached, and the refusal is audited."""
    with gateway_in_front(tmp_path, {"target": {"type": "openai-compatible"}}) as gateway:
        client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="k", max_retries=0)
        with pytest.raises(openai.PermissionDeniedError) as refused:
            client.completions.create(model="m", prompt=[9906, 1917])
        assert refused.value.response.json()["error"] == "haechi_token_ids_refused"
        with pytest.raises(openai.PermissionDeniedError):
            client.embeddings.create(model="m", input=[[9906, 1917], [42]])
        assert gateway.upstream.received == []
        assert _refusals(gateway) == ["token_id_input", "token_id_input"]
        # Text is inspected and forwarded as usual.
        assert client.embeddings.create(model="m", input=["hello"]).data
        assert len(gateway.upstream.received) == 1


def test_token_ids_written_as_floats_are_refused(tmp_path: Path) -> None:
    """A lax server (pydantic, as vLLM's) reads ``73.0`` or ``7.3e1`` as the id 73: ids in
    any JSON spelling of an integer are refused like plain ones."""
    with gateway_in_front(tmp_path, {"target": {"type": "openai-compatible"}}) as gateway:
        client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="k", max_retries=0)
        floats: Any = [73.0, 1097.0]
        with pytest.raises(openai.PermissionDeniedError) as refused:
            client.completions.create(model="m", prompt=floats)
        assert refused.value.response.json()["error"] == "haechi_token_ids_refused"
        with pytest.raises(openai.PermissionDeniedError):
            client.embeddings.create(model="m", input=[floats])
        exponents = b'{"model": "m", "prompt": [7.3e1, 1.097e3]}'
        response = httpx.post(
            f"{gateway.url}/v1/completions",
            content=exponents,
            headers={"content-type": "application/json"},
        )
        assert response.status_code == 403
        assert response.json()["error"] == "haechi_token_ids_refused"
        assert gateway.upstream.received == []
        assert _refusals(gateway) == ["token_id_input"] * 3


@pytest.mark.parametrize("key", ["Context", "CONTEXT", "conTEXT"])
def test_ollama_context_in_any_letter_case_is_refused(
    shared_gateway: SharedGateways, key: str
) -> None:
    """Ollama's Go decoder matches member names case-insensitively: ``"Context"`` fills
    ``context`` as well."""
    gateway = shared_gateway({"target": {"type": "ollama"}})
    body = {"model": "m", "prompt": "hi", "stream": False, key: [1734, 73, 1097]}
    response = httpx.post(f"{gateway.url}/api/generate", json=body)
    assert response.status_code == 403
    assert response.json()["error"] == "haechi_token_ids_refused"
    assert gateway.upstream.received == []


@pytest.mark.parametrize(
    ("adapter", "path", "body"),
    [
        ("llama-cpp", "/completion", {"prompt": [12, " mixed ", 34]}),
        ("llama-cpp", "/completions", {"prompt": [12, 34]}),
        ("llama-cpp", "/infill", {"input_prefix": "a", "prompt": [12, 34]}),
        # The code around the gap is tokenized like a prompt: ids, or ids mixed with text.
        ("llama-cpp", "/infill", {"input_prefix": [12, 34], "prompt": ""}),
        ("llama-cpp", "/infill", {"input_prefix": "a", "input_suffix": ["# ", 34]}),
        ("llama-cpp", "/embedding", {"content": [12, 34]}),
        ("llama-cpp", "/embeddings", {"input": [[12, 34]]}),
        ("llama-cpp", "/detokenize", {"tokens": [12, 34]}),
        # llama.cpp reads ``content`` when there is no ``input``, and tokenizing ids answers
        # each with its piece of text.
        ("llama-cpp", "/v1/embeddings", {"model": "m", "content": [12, 34]}),
        ("llama-cpp", "/tokenize", {"content": [12, 34], "with_pieces": True}),
        # Paths no adapter lists, which vLLM serves: SageMaker's /invocations, pooling.
        ("vllm-openai", "/invocations", {"model": "m", "prompt": [9906, 1917]}),
        ("vllm-openai", "/pooling", {"model": "m", "input": [9906, 1917]}),
        ("vllm-openai", "/inference/v1/generate", {"token_ids": [9906, 1917]}),
        # SGLang reads input_ids as the prompt, on its chat route too (no chat template).
        (
            "openai-compatible",
            "/v1/chat/completions",
            {"model": "m", "messages": [{"role": "user", "content": "hi"}], "input_ids": [7]},
        ),
        ("vllm-openai", "/v1/completions", {"model": "m", "prompt": "", "input_ids": [7, 8]}),
        ("openai-compatible", "/generate", {"input_ids": [9906, 1917]}),
        ("openai-compatible", "/v1/score", {"query": "q", "items": [[9906, 1917]]}),
        # The older OpenAI path that names the model, as LiteLLM serves it.
        ("openai-compatible", "/engines/m/completions", {"prompt": [9906, 1917]}),
        ("ollama", "/api/generate", {"model": "m", "prompt": "hi", "context": [1, 2, 3]}),
        ("vllm-openai", "/v1/completions", {"model": "m", "prompt": [[1, 2], [3]]}),
    ],
)
def test_token_ids_in_each_protocol_are_refused(
    shared_gateway: SharedGateways, adapter: str, path: str, body: dict[str, Any]
) -> None:
    gateway = shared_gateway({"target": {"type": adapter}})
    response = httpx.post(f"{gateway.url}{path}", json={**body, "stream": False})
    assert response.status_code == 403
    assert response.json()["error"] == "haechi_token_ids_refused"
    assert gateway.upstream.received == []


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/tokenize", {"content": "write to jane"}),
        ("/v1/embeddings", {"model": "m", "content": "write to jane"}),
        ("/some/unknown/route", {"prompt": "text", "n": 2, "options": {"seed": 7}}),
    ],
)
def test_text_in_the_same_fields_is_forwarded(
    tmp_path: Path, path: str, body: dict[str, Any]
) -> None:
    with gateway_in_front(tmp_path, {"target": {"type": "llama-cpp"}}) as gateway:
        response = httpx.post(f"{gateway.url}{path}", json=body)
        assert response.status_code != 403, response.text
        assert gateway.upstream.last.json() == body
        assert _refusals(gateway) == []


@pytest.mark.parametrize(
    ("path", "embeds"),
    [
        ("/v1/completions", "AAAAAAAAgD8AAABA"),
        ("/v1/completions", ["AAAAAAAAgD8AAABA"]),
        ("/invocations", "AAAAAAAAgD8AAABA"),  # a path vLLM serves that no adapter lists
    ],
)
@pytest.mark.parametrize("member", ["prompt_embeds", "input_embeds"])
def test_a_prompt_given_as_embeddings_is_refused_unless_relayed(
    tmp_path: Path, path: str, embeds: Any, member: str
) -> None:
    """vLLM (``--enable-prompt-embeds``) reads ``prompt_embeds`` as the prompt, SGLang
    ``input_embeds``: tensors that hold no text to inspect."""
    body = {"model": "m", member: embeds}
    with gateway_in_front(tmp_path, {"target": {"type": "vllm-openai"}}) as gateway:
        response = httpx.post(f"{gateway.url}{path}", json=body)
        assert response.status_code == 403
        assert response.json()["error"] == "haechi_token_ids_refused"
        assert gateway.upstream.received == []
        assert _refusals(gateway) == ["embedding_input"]
        unset = {**body, member: None}
        assert httpx.post(f"{gateway.url}{path}", json=unset).status_code != 403
        assert gateway.upstream.last.json()[member] is None
    config = {"target": {"type": "vllm-openai", "tokenIdInput": "relay"}}
    with gateway_in_front(tmp_path / "relay", config) as gateway:
        assert httpx.post(f"{gateway.url}{path}", json=body).status_code != 403
        assert gateway.upstream.last.json() == body


def test_token_ids_are_relayed_when_configured(tmp_path: Path) -> None:
    config = {"target": {"type": "ollama", "tokenIdInput": "relay"}}
    with gateway_in_front(tmp_path, config) as gateway:
        client = ollama.Client(host=gateway.url)
        answer = client.generate(model="m", prompt="hi", context=[1, 2, 3], stream=False)
        assert answer.response == "echo: hi"
        assert gateway.upstream.last.json()["context"] == [1, 2, 3]
        assert _refusals(gateway) == []


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"prompt": "text"}, False),
        ({"prompt": ["a", "b"]}, False),
        ({"prompt": [True, None, 1.5]}, False),
        ({"other": [1, 2]}, False),
        ({"prompt": [1]}, True),
        ({"prompt": [["a"], [2]]}, True),
        ({"prompt": {"nested": [7]}}, True),
        ({"prompt": [73.0]}, True),
        ({"prompt": [["a"], [-2.0]]}, True),
        ({"prompt": [1e300]}, True),
        ({"Prompt": [1]}, True),
        ({"PROMPT": ["a", 1.0]}, True),
        ({"prompt": "a", "PROMPT": [2]}, True),
        ({"prompt": [0.5, False, float("inf")]}, False),
        ({"prompts": [1]}, False),
        ([1, 2], False),
    ],
)
def test_holds_token_ids(body: Any, expected: bool) -> None:
    assert holds_token_ids(body, ("prompt",)) is expected


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"\u0130nput": [1]}, "input"),  # dotted capital I: Go folds it to "I"
        ({"INPUT": [1]}, "input"),
        ({"token\u017f": [1]}, "tokens"),  # long s: Go folds it to "S"
        ({"to\u212aens": [1]}, "tokens"),  # Kelvin sign: Go folds it to "K"
    ],
)
def test_token_ids_in_a_member_go_binds_to_the_field_count(body: Any, field: str) -> None:
    """Ollama's Go decoder binds these members to the field, so their ids reach the model."""
    assert holds_token_ids(body, (field,))
    assert not holds_token_ids({"x" + next(iter(body)): [1]}, (field,))
