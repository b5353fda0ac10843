# SPDX-License-Identifier: Apache-2.0
"""De-tokenization through a real gateway, attacked by a hostile client and a hostile upstream.

The promise: only the tokens issued for *this* request come back as values (also cut across
frames, in every wire format), a vault that fails makes the answer fail closed and leaves
an audit record, and no value reaches the audit log or an error body.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.stream_fixtures import (
    anthropic_message,
    nested_arguments,
    openai_sse,
    openai_tool_arguments,
    openai_tool_sse,
    read_sse,
    responses_sse,
    sse,
    unnested_argument,
)
from tests.upstream_server import Gateway, Reply, gateway_in_front

MINE = "ann.a@example.com"
THEIRS = "bob.b@example.org"
#: A value of a custom rule holding a quote and a backslash (a password, say).
QUOTED = 'pw=a"b\\c'
CONFIG: dict[str, Any] = {
    "policy": {"actions": {"email": "tokenize", "pw": "tokenize"}},
    "filters": {"customRules": [{"id": "pw", "type": "pw", "pattern": r"pw=\S+"}]},
    "responseProtection": {"enabled": True},
    "tokenVault": {"detokenizeResponses": True},
    "streaming": {"requestMode": "inspect"},
}


def _config(**vault: Any) -> dict[str, Any]:
    config = json.loads(json.dumps(CONFIG))
    config["tokenVault"].update(vault)
    return config


def _chat(text: str, *, stream: bool = False) -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "user", "content": text}], "stream": stream}


def _post(gateway: Gateway, text: str, *, stream: bool = False) -> httpx.Response:
    return httpx.post(
        f"{gateway.url}/v1/chat/completions", json=_chat(text, stream=stream), timeout=30
    )


def _markers(text: str) -> list[str]:
    found: list[str] = []
    start = text.find("[TOKEN:")
    while start != -1:
        end = text.index("]", start) + 1
        found.append(text[start:end])
        start = text.find("[TOKEN:", end)
    return found


def _sent_markers(gateway: Gateway) -> list[str]:
    """The markers the upstream received in the last request (in its one user text)."""
    return _markers(gateway.upstream.last.text)


def _streamed_text(body: str) -> str:
    text = ""
    for line in body.split("\n"):
        if line.startswith("data: {"):
            for choice in json.loads(line[len("data: ") :]).get("choices", []):
                text += (choice.get("delta") or {}).get("content") or ""
    return text


class _Scripted(Reply):
    """A whole JSON answer written when the request arrives (it can repeat its markers)."""

    def __init__(self, gateway: Gateway, answer: Any) -> None:
        super().__init__(headers={"content-type": "application/json"})
        self._gateway = gateway
        self._answer = answer

    @property  # type: ignore[override]
    def body(self) -> bytes:
        return json.dumps(self._answer(_sent_markers(self._gateway))).encode()

    @body.setter
    def body(self, value: bytes | None) -> None:
        pass


@pytest.mark.parametrize("deterministic", [False, True])
@pytest.mark.parametrize("stream", [False, True])
def test_a_token_seen_in_another_request_is_not_restored(
    tmp_path: Path, deterministic: bool, stream: bool
) -> None:
    """A client that replays (or forges) a marker it saw for someone else's value, and has
    the model repeat it next to a marker of its own, gets only its own value back."""
    with gateway_in_front(tmp_path, _config(deterministic=deterministic)) as gateway:
        assert _post(gateway, f"I am {MINE}").status_code == 200
        (foreign,) = _sent_markers(gateway)
        forged = foreign[:-3] + "abc]"
        answer = _post(gateway, f"{foreign} {forged} and {THEIRS}", stream=stream)
        assert answer.status_code == 200
        text = _streamed_text(answer.text) if stream else answer.json()["choices"][0]["message"]
        text = text if isinstance(text, str) else text["content"]
        assert text == f"echo: {foreign} {forged} and {THEIRS}"
        assert MINE not in answer.text
        assert MINE not in gateway.audit_text()
        assert THEIRS not in gateway.audit_text()


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 11, 17, 29, 64])
def test_adjacent_markers_cut_at_any_size_are_restored(tmp_path: Path, size: int) -> None:
    with gateway_in_front(tmp_path, CONFIG) as gateway:

        def wire() -> Iterator[bytes]:
            mine, theirs = _sent_markers(gateway)
            text = f"x{mine}{theirs}{mine}[{theirs}][TOKEN:{mine}y"
            yield openai_sse([text[i : i + size] for i in range(0, len(text), size)])

        gateway.upstream.queue(Reply(wire=wire()))
        answer = _post(gateway, f"{MINE} {THEIRS}", stream=True)
        assert _streamed_text(answer.text) == f"x{MINE}{THEIRS}{MINE}[{THEIRS}][TOKEN:{MINE}y"


@pytest.mark.parametrize(
    ("target", "path", "body"),
    [
        (
            "anthropic",
            "/v1/messages",
            {"model": "m", "max_tokens": 9, "stream": True, "messages": []},
        ),
        ("ollama", "/api/chat", {"model": "m", "messages": []}),
        ("gemini", "/v1beta/models/g:streamGenerateContent?alt=sse", {"contents": []}),
    ],
)
def test_other_wire_formats_restore_only_this_requests_markers(
    tmp_path: Path, target: str, path: str, body: dict[str, Any]
) -> None:
    config = {**_config(), "target": {"type": target}}
    with gateway_in_front(tmp_path, config) as gateway:
        # A token of someone else's request, which this client has seen.
        issued = asyncio.run(gateway.runtime.token_vault.tokenize(THEIRS, "email", context={}))
        text = f"mail {MINE} not [TOKEN:{issued.token}]"
        if target == "gemini":
            body = {"contents": [{"role": "user", "parts": [{"text": text}]}]}
        else:
            body = {**body, "messages": [{"role": "user", "content": text}]}
        answer = httpx.post(f"{gateway.url}{path}", json=body, timeout=30)
        assert answer.status_code == 200
        assert MINE not in gateway.upstream.last.text
        # The upstream echoes the text in four-character frames: both markers arrive cut.
        assert MINE in answer.text
        assert THEIRS not in answer.text
        assert [r["count"] for r in gateway.audit() if r["operation"].endswith("detokenize")] == [1]


def test_markers_in_fields_other_than_the_text_are_restored_only_for_this_request(
    tmp_path: Path,
) -> None:
    with gateway_in_front(tmp_path, CONFIG) as gateway:
        assert _post(gateway, f"I am {THEIRS}").status_code == 200
        (foreign,) = _sent_markers(gateway)

        def answer(markers: list[str]) -> dict[str, Any]:
            (mine,) = markers
            return {
                "id": f"{mine}{foreign}",
                "object": "chat.completion",
                "model": mine,
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": "stop",
                        "message": {"role": "assistant", "content": f"{foreign}{mine}"},
                    }
                ],
            }

        gateway.upstream.queue(_Scripted(gateway, answer))
        sent = _post(gateway, f"me {MINE}")
        assert sent.status_code == 200
        document = sent.json()
        assert document["id"] == f"{MINE}{foreign}"
        assert document["model"] == MINE
        assert document["choices"][0]["message"]["content"] == f"{foreign}{MINE}"
        assert THEIRS not in sent.text


# -- values in tool-call arguments (JSON inside a string) -------------------------------------


def _tool_call_answer(arguments: str) -> dict[str, Any]:
    """A whole chat completion calling ``login`` with ``arguments``."""
    call = {"name": "login", "arguments": arguments}
    message = {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"id": "call_1", "type": "function", "function": call}],
    }
    return {
        "id": "c",
        "object": "chat.completion",
        "model": "m",
        "choices": [{"index": 0, "finish_reason": "tool_calls", "message": message}],
    }


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_a_restored_value_keeps_whole_tool_arguments_valid_json(tmp_path: Path, depth: int) -> None:
    """A value with a quote and a backslash, restored inside a tool call's arguments (JSON
    in a string), must reach the tool as that value: written raw, it breaks the arguments,
    and a value such as ``pw=x","admin":true,"y":"`` would add members to them. Where the
    arguments hold JSON in a string of theirs (and so on), the value is escaped once for
    every string it sits in."""
    with gateway_in_front(tmp_path, CONFIG) as gateway:

        def answer(markers: list[str]) -> dict[str, Any]:
            (marker,) = markers
            return _tool_call_answer(nested_arguments(marker, depth))

        gateway.upstream.queue(_Scripted(gateway, answer))
        sent = _post(gateway, f"log in with {QUOTED}")
        assert sent.status_code == 200
        (call,) = sent.json()["choices"][0]["message"]["tool_calls"]
        assert unnested_argument(call["function"]["arguments"], depth) == QUOTED


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_a_restored_value_keeps_streamed_tool_arguments_valid_json(
    tmp_path: Path, depth: int
) -> None:
    with gateway_in_front(tmp_path, CONFIG) as gateway:

        def wire() -> Iterator[bytes]:
            (marker,) = _sent_markers(gateway)
            arguments = nested_arguments(marker, depth)
            pieces = [arguments[i : i + 3] for i in range(0, len(arguments), 3)]
            yield openai_tool_sse({0: ("login", pieces)})

        gateway.upstream.queue(Reply(wire=wire()))
        sent = _post(gateway, f"log in with {QUOTED}", stream=True)
        assert sent.status_code == 200
        arguments = openai_tool_arguments(sent.content)
        assert unnested_argument(arguments[0], depth) == QUOTED


def _streamed_call(target: str, arguments: dict[str, Any]) -> tuple[str, bytes]:
    """The path and the wire of a stream whose frame carries answer text and a call of
    ``login`` with ``arguments`` as an object (Ollama's ``tool_calls``, a Gemini
    ``functionCall``): the arguments are strings of the frame, not a text of their own."""
    if target == "ollama":
        message = {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"function": {"name": "login", "arguments": arguments}}],
        }
        frames = [
            {"model": "m", "message": message, "done": False},
            {"model": "m", "message": {"role": "assistant", "content": ""}, "done": True},
        ]
        return "/api/chat", "".join(json.dumps(frame) + "\n" for frame in frames).encode()
    parts = [{"text": "ok"}, {"functionCall": {"name": "login", "args": arguments}}]
    candidate = {"content": {"parts": parts, "role": "model"}, "finishReason": "STOP"}
    path = "/v1beta/models/g:streamGenerateContent?alt=sse"
    return path, f"data: {json.dumps({'candidates': [candidate]})}\r\n\r\n".encode()


def _streamed_call_arguments(target: str, wire: bytes) -> dict[str, Any]:
    if target == "ollama":
        (frame, _done) = [json.loads(line) for line in wire.splitlines() if line.strip()]
        (call,) = frame["message"]["tool_calls"]
        return dict(call["function"]["arguments"])
    (line,) = [line for line in wire.splitlines() if line.startswith(b"data: ")]
    parts = json.loads(line[len(b"data: ") :])["candidates"][0]["content"]["parts"]
    return dict(parts[1]["functionCall"]["args"])


@pytest.mark.parametrize("depth", [1, 2])
@pytest.mark.parametrize("target", ["ollama", "gemini"])
def test_a_restored_value_keeps_json_in_a_string_of_streamed_call_arguments_valid(
    tmp_path: Path, target: str, depth: int
) -> None:
    """Arguments streamed as an object are strings of the frame, beside the answer text: a
    string of theirs that holds JSON takes the value escaped once more, as in a whole
    answer, while a string of prose takes it as it is."""
    with gateway_in_front(tmp_path, {**CONFIG, "target": {"type": target}}) as gateway:

        def wire() -> Iterator[bytes]:
            (marker,) = _markers(gateway.upstream.last.text)
            arguments = {"request": nested_arguments(marker, depth), "note": f"as {marker}"}
            yield _streamed_call(target, arguments)[1]

        gateway.upstream.queue(Reply(wire=wire()))
        text = f"log in with {QUOTED}"
        if target == "ollama":
            body: dict[str, Any] = {"model": "m", "messages": [{"role": "user", "content": text}]}
        else:
            body = {"contents": [{"role": "user", "parts": [{"text": text}]}]}
        sent = httpx.post(f"{gateway.url}{_streamed_call(target, {})[0]}", json=body, timeout=30)
        assert sent.status_code == 200
        arguments = _streamed_call_arguments(target, sent.content)
        assert unnested_argument(arguments["request"], depth) == QUOTED
        assert arguments["note"] == f"as {QUOTED}"


@pytest.mark.parametrize("stream", [False, True])
def test_a_marker_that_is_no_string_of_the_arguments_stays_a_marker(
    tmp_path: Path, stream: bool
) -> None:
    """A model that writes a marker bare in the arguments (``{"a": [TOKEN:...]}``) leaves
    no string to escape the value for: put there, ``1, "admin": true`` would be members of
    the document. The marker stays, and the value goes nowhere in the answer."""
    with gateway_in_front(tmp_path, CONFIG) as gateway:
        value = "pw=1,2]"

        def arguments() -> str:
            (marker,) = _sent_markers(gateway)
            return f'{{"a": [{marker}]}}'

        def answer(_markers: list[str]) -> dict[str, Any]:
            return _tool_call_answer(arguments())

        def wire() -> Iterator[bytes]:
            text = arguments()
            yield openai_tool_sse({0: ("login", [text[i : i + 4] for i in range(0, len(text), 4)])})

        gateway.upstream.queue(Reply(wire=wire()) if stream else _Scripted(gateway, answer))
        sent = _post(gateway, f"log in with {value}", stream=stream)
        assert sent.status_code == 200
        if stream:
            written = openai_tool_arguments(sent.content)[0]
        else:
            (call,) = sent.json()["choices"][0]["message"]["tool_calls"]
            written = call["function"]["arguments"]
        (marker,) = _markers(written)
        assert written == f'{{"a": [{marker}]}}'
        assert value not in sent.text


def _content_answer(content: str) -> dict[str, Any]:
    message = {"role": "assistant", "content": content}
    return {
        "id": "c",
        "object": "chat.completion",
        "model": "m",
        "choices": [{"index": 0, "finish_reason": "stop", "message": message}],
    }


@pytest.mark.parametrize("stream", [False, True])
def test_a_value_restored_into_an_answer_in_json_mode_stays_a_json_string(
    tmp_path: Path, stream: bool
) -> None:
    """An answer that is a JSON document (JSON mode) gets the value escaped as the model
    would have written it; an answer in prose gets it as it is."""
    with gateway_in_front(tmp_path, CONFIG) as gateway:

        def documents(markers: list[str]) -> tuple[str, str]:
            (marker,) = markers
            return json.dumps({"password": marker, "admin": False}), f"Use {marker} to log in."

        if stream:

            def wire(which: int) -> Iterator[bytes]:
                text = documents(_sent_markers(gateway))[which]
                yield openai_sse([text[i : i + 4] for i in range(0, len(text), 4)])

            answers = []
            for which in (0, 1):
                gateway.upstream.queue(Reply(wire=wire(which)))
                sent = _post(gateway, f"log in with {QUOTED}", stream=True)
                assert sent.status_code == 200
                answers.append(_streamed_text(sent.text))
        else:
            answers = []
            for which in (0, 1):
                gateway.upstream.queue(
                    _Scripted(gateway, lambda m, w=which: _content_answer(documents(m)[w]))
                )
                sent = _post(gateway, f"log in with {QUOTED}")
                assert sent.status_code == 200
                answers.append(sent.json()["choices"][0]["message"]["content"])
        assert json.loads(answers[0]) == {"password": QUOTED, "admin": False}
        assert answers[1] == f"Use {QUOTED} to log in."


def _texts_wire(target: str, texts: Iterable[str]) -> bytes:
    """An answer whose text comes as several texts a client reads apart as well as joined:
    Anthropic text blocks (``text_stream`` joins them), or the output text parts of a
    Responses message (``output_text`` joins them)."""
    if target == "anthropic":

        def event(kind: str, **data: Any) -> str:
            return sse({"type": kind, **data}, event=kind)

        block = {"type": "text", "text": ""}
        frames = [event("message_start", message=anthropic_message())]
        for index, text in enumerate(texts):
            frames += [
                event("content_block_start", index=index, content_block=block),
                event(
                    "content_block_delta", index=index, delta={"type": "text_delta", "text": text}
                ),
                event("content_block_stop", index=index),
            ]
        return "".join([*frames, event("message_stop")]).encode()
    item = {"type": "message", "id": "item_0", "role": "assistant", "content": []}
    place = {"item_id": "item_0", "output_index": 0}
    deltas = [
        ("output_text.delta", {**place, "content_index": index, "delta": text})
        for index, text in enumerate(texts)
    ]
    return responses_sse(("output_item.added", {"output_index": 0, "item": item}), *deltas).encode()


def _texts_apart(wire: bytes) -> list[str]:
    """The text of each block (or part) a client reads, in order."""
    texts: dict[int, str] = {}
    for frame in read_sse(wire):
        event = json.loads(frame.data) if frame.data and frame.data.startswith("{") else {}
        if event.get("type") == "content_block_delta":
            index, text = event["index"], event["delta"]["text"]
        elif event.get("type") == "response.output_text.delta":
            index, text = event["content_index"], event["delta"]
        else:
            continue
        texts[index] = texts.get(index, "") + text
    return [texts[index] for index in sorted(texts)]


@pytest.mark.parametrize("target", ["anthropic", "responses"])
@pytest.mark.parametrize(
    ("texts", "restored"),
    [
        # Both readings prose, or both in a string of JSON: the value, written for both
        # (``@`` stands for the marker, then for the value as written).
        (("Hi, ", "use @ now."), "use @ now."),
        (('{"a": 1}', '{"pw": "@"}'), '{"pw": "@"}'),
        # JSON after prose: a string of the block's JSON, prose of the joined text.
        (("Hi.", '{"pw": "@"}'), None),
        # Prose of its own block, in a string of the JSON the blocks join to.
        (('{"note": "', "@", '"}'), None),
    ],
)
def test_a_streamed_marker_read_at_two_levels_stays_a_marker(
    tmp_path: Path, target: str, texts: tuple[str, ...], restored: str | None
) -> None:
    """A client reads each content block (each part) as a text of its own, and also all of
    them joined. A marker both readings put at one level gets its value written for it; one
    they put at two levels stays, as written for either reading the value breaks the
    other (a quote in it ends the joined document's string), as in a whole answer."""
    ask = f"log in with {QUOTED}"
    if target == "anthropic":
        config = {**CONFIG, "target": {"type": "anthropic"}}
        path, body = "/v1/messages", {"model": "m", "max_tokens": 9, "stream": True}
        body["messages"] = [{"role": "user", "content": ask}]
    else:
        config, path, body = CONFIG, "/v1/responses", {"model": "m", "stream": True, "input": ask}
    with gateway_in_front(tmp_path, config) as gateway:
        sent_markers: list[str] = []

        def wire() -> Iterator[bytes]:
            sent_markers.extend(_markers(gateway.upstream.last.text))
            yield _texts_wire(target, (text.replace("@", *sent_markers) for text in texts))

        gateway.upstream.queue(Reply(wire=wire()))
        sent = httpx.post(f"{gateway.url}{path}", json=body, timeout=30)
        assert sent.status_code == 200
        read = _texts_apart(sent.content)
        if restored is None:
            assert read == [text.replace("@", *sent_markers) for text in texts]
        elif restored.startswith("{"):
            assert json.loads(read[1]) == {"pw": QUOTED}
        else:
            assert read[1] == restored.replace("@", QUOTED)


@pytest.mark.parametrize("quoted", [True, False])
def test_a_value_restored_into_json_sent_as_text_frames_stays_a_json_string(
    tmp_path: Path, quoted: bool
) -> None:
    """An upstream can stream its answer as text frames (each data a JSON string, or text
    that is no JSON), which a client joins: when they join to JSON, a value restored in a
    frame lies in a string of that document and is escaped for it, however the frame
    begins."""
    with gateway_in_front(tmp_path, CONFIG) as gateway:

        def wire() -> Iterator[bytes]:
            (marker,) = _sent_markers(gateway)
            texts = ['{"pw": "', f"{marker}", '", "n": 1}']
            frames = [sse(json.dumps(text) if quoted else text) for text in texts]
            yield "".join([*frames, sse("[DONE]")]).encode()

        gateway.upstream.queue(Reply(wire=wire()))
        sent = _post(gateway, f"log in with {QUOTED}", stream=True)
        assert sent.status_code == 200
        data = [frame.data for frame in read_sse(sent.content) if frame.data != "[DONE]"]
        joined = "".join(json.loads(text) if quoted else text for text in data if text)
        assert json.loads(joined) == {"pw": QUOTED, "n": 1}


def _gemini_answer(*candidates: list[str]) -> dict[str, Any]:
    """A whole Gemini answer whose candidates have these text parts, which google-genai's
    ``response.text`` joins."""
    return {
        "candidates": [
            {
                "index": index,
                "content": {"parts": [{"text": part} for part in parts], "role": "model"},
                "finishReason": "STOP",
            }
            for index, parts in enumerate(candidates)
        ]
    }


def test_a_marker_whose_level_a_joined_answer_reads_otherwise_stays_a_marker(
    tmp_path: Path,
) -> None:
    """The parts of a Gemini answer are read one by one and joined (``response.text``): a
    marker that opens a part of prose but lies in a string of the JSON the parts join to is
    at two levels at once. Either way of writing the value breaks one of the readings (raw,
    a quote in it ends the joined document's string), so the marker stays; a marker both
    readings put at the same level is restored."""
    with gateway_in_front(tmp_path, {**CONFIG, "target": {"type": "gemini"}}) as gateway:

        def answer(markers: list[str]) -> dict[str, Any]:
            (marker,) = markers
            return _gemini_answer(['{"password": "', f'{marker}"}}'], ["Use ", f"{marker} now."])

        gateway.upstream.queue(_Scripted(gateway, answer))
        ask = {"contents": [{"role": "user", "parts": [{"text": f"log in with {QUOTED}"}]}]}
        sent = httpx.post(f"{gateway.url}/v1beta/models/g:generateContent", json=ask, timeout=30)
        assert sent.status_code == 200
        kept, restored = (
            [part["text"] for part in candidate["content"]["parts"]]
            for candidate in sent.json()["candidates"]
        )
        (marker,) = _markers(kept[1])
        assert kept[1] == f'{marker}"}}'
        assert restored[1] == f"{QUOTED} now."


# -- a vault that fails ----------------------------------------------------------------------


class _CorruptsTheVault(Reply):
    """Answers (echoing) after writing garbage over the vault file, as a crash or a careless
    operator could between the request and its answer."""

    def __init__(self, vault: Path) -> None:
        super().__init__()
        self._vault = vault

    @property  # type: ignore[override]
    def delay(self) -> float:
        self._vault.write_text("{not a vault")
        return 0.0

    @delay.setter
    def delay(self, value: float) -> None:
        pass


def _vault_events(gateway: Gateway) -> list[tuple[str, str | None]]:
    return [
        (record["decision"], record["reason"])
        for record in gateway.audit()
        if record["operation"] == "token-vault:detokenize"
    ]


def test_a_vault_that_fails_while_restoring_refuses_the_answer_and_audits_it(
    tmp_path: Path,
) -> None:
    with gateway_in_front(tmp_path, CONFIG) as gateway:
        vault = Path(gateway.runtime.config.token_vault.path)
        gateway.upstream.queue(_CorruptsTheVault(vault))
        answer = _post(gateway, f"I am {MINE}")
        assert answer.status_code == 500
        assert "[TOKEN:" not in answer.text
        assert MINE not in answer.text
        assert _vault_events(gateway) == [("detokenize_failed", "store_error")]
        assert MINE not in gateway.audit_text()
        # The broken file is left as it was: never replaced by an empty vault.
        assert vault.read_text() == "{not a vault"


def test_a_vault_that_fails_while_restoring_a_stream_stops_it_and_audits_it(
    tmp_path: Path,
) -> None:
    with gateway_in_front(tmp_path, CONFIG) as gateway:
        vault = Path(gateway.runtime.config.token_vault.path)
        gateway.upstream.queue(_CorruptsTheVault(vault))
        answer = _post(gateway, f"I am {MINE}", stream=True)
        assert "[DONE]" not in answer.text
        assert MINE not in answer.text
        assert "[TOKEN:" not in _streamed_text(answer.text)
        streams = [
            (record["decision"], record["reason"])
            for record in gateway.audit()
            if record["operation"].startswith("response-stream:")
        ]
        assert streams == [("stream_blocked", "stream_inspection_error")]
        assert _vault_events(gateway) == [("detokenize_failed", "store_error")]
        assert MINE not in gateway.audit_text()


@pytest.mark.parametrize("damage", ["garbage", "directory"])
def test_a_vault_that_cannot_issue_tokens_refuses_the_request(tmp_path: Path, damage: str) -> None:
    with gateway_in_front(tmp_path, CONFIG) as gateway:
        vault = Path(gateway.runtime.config.token_vault.path)
        vault.parent.mkdir(parents=True, exist_ok=True)
        if damage == "garbage":
            vault.write_text('{"tokens": [')
        else:
            vault.mkdir()
        answer = _post(gateway, f"I am {MINE}")
        assert answer.status_code == 500
        assert answer.json()["error"] == "haechi_protection_failed"
        assert MINE not in answer.text
        assert gateway.upstream.received == []
        (event,) = [r for r in gateway.audit() if r["operation"].startswith("request:")]
        assert event["blocked"] is True
        assert event["decision"] == "internal_error"
        assert MINE not in gateway.audit_text()
        if damage == "garbage":
            assert vault.read_text() == '{"tokens": ['
