# SPDX-License-Identifier: Apache-2.0
"""Text written as token ids: the ids leave protected answers, and requests that carry them
are refused unless the configuration relays them.

A client holding the model's tokenizer reads token ids back into text, so ids of a redacted
answer would carry the value the gateway took out, and ids in a request reach the model
uninspected. Ollama's ``context`` in answers is covered with the Ollama client in
``test_proxy_clients``; here llama.cpp's ``tokens`` and vLLM's ``token_ids``, streamed and
not, and the request side, through a gateway on a real socket.
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

from haechi.protocols.token_ids import drop_fields, holds_token_ids
from tests.upstream_server import Reply, gateway_in_front

EMAIL = "jane.doe@example.com"
ANSWER = f"write to {EMAIL}"
REDACTED = "write to [REDACTED:email]"
PROTECTED = {"streaming": {"requestMode": "inspect"}, "responseProtection": {"enabled": True}}


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
    config = {
        "target": {"type": "vllm-openai"},
        "responseProtection": {"enabled": True, "mode": "dry-run"},
    }
    with gateway_in_front(tmp_path, config) as gateway:
        gateway.upstream.queue(Reply(text="plain"))
        body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
        whole = httpx.post(
            f"{gateway.url}/v1/chat/completions", json={**body, "return_token_ids": True}
        ).json()
        assert whole["choices"][0]["token_ids"] == [ord(char) for char in "plain"]


_JSON = st.recursive(
    st.none() | st.integers() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(["a", "tokens", "context", "b"]), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(document=_JSON, escaped=st.booleans())
def test_drop_fields_leaves_no_named_member_anywhere(document: Any, escaped: bool) -> None:
    """With or without the text the document was parsed from: a name the text spells only
    through an escape (``"tok\\u0065ns"``) is dropped too."""
    before = json.dumps(document)
    text = before.replace('"tokens"', '"tok\\u0065ns"') if escaped else before
    assert json.loads(text) == document
    names = frozenset({"tokens", "context"})
    dropped = drop_fields(document, names, text)
    after = json.dumps(document)
    assert '"tokens"' not in after
    assert '"context"' not in after
    assert dropped == (before != after)


def test_drop_fields_walks_deeper_than_the_recursion_limit() -> None:
    document: Any = {"context": [1]}
    for _ in range(5000):
        document = {"a": [document]}
    assert drop_fields(document, frozenset({"context"}))
    assert drop_fields(document, frozenset({"context"})) is False


@pytest.mark.parametrize("names", [frozenset(), frozenset({"x"})])
def test_drop_fields_without_a_match_changes_nothing(names: frozenset[str]) -> None:
    document = {"a": [{"b": 1}], "c": "x"}
    assert drop_fields(document, names) is False
    assert document == {"a": [{"b": 1}], "c": "x"}


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


@pytest.mark.parametrize(
    ("adapter", "path", "body"),
    [
        ("llama-cpp", "/completion", {"prompt": [12, " mixed ", 34]}),
        ("ollama", "/api/generate", {"model": "m", "prompt": "hi", "context": [1, 2, 3]}),
        ("vllm-openai", "/v1/completions", {"model": "m", "prompt": [[1, 2], [3]]}),
    ],
)
def test_token_ids_in_each_protocol_are_refused(
    tmp_path: Path, adapter: str, path: str, body: dict[str, Any]
) -> None:
    with gateway_in_front(tmp_path, {"target": {"type": adapter}}) as gateway:
        response = httpx.post(f"{gateway.url}{path}", json={**body, "stream": False})
        assert response.status_code == 403
        assert response.json()["error"] == "haechi_token_ids_refused"
        assert gateway.upstream.received == []


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
        ([1, 2], False),
    ],
)
def test_holds_token_ids(body: Any, expected: bool) -> None:
    assert holds_token_ids(body, ("prompt",)) is expected
