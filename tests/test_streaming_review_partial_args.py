# SPDX-License-Identifier: Apache-2.0
"""Gemini's streamed function-call arguments reach no window, so they stop the stream.

Asked with ``functionCallingConfig.streamFunctionCallArguments``, Gemini streams a call's
arguments in pieces: each chunk's ``functionCall.partialArgs`` holds a ``stringValue`` piece
of the argument its ``jsonPath`` names, and clients join the pieces across chunks. Protected
chunk by chunk, an address cut between two pieces reached the client whole.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.stream_fixtures import EMAIL, INSPECT_REDACTING, REDACTED, sse
from tests.upstream_server import Gateway, Reply, gateway_in_front

GEMINI_STREAM = "/v1beta/models/g:streamGenerateContent"
GEMINI_CONFIG = {**INSPECT_REDACTING, "target": {"type": "gemini"}}
REQUEST = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
#: The spellings google-genai reads the call and its pieces by (JSON and proto names).
SPELLINGS = [
    ("functionCall", "partialArgs", "stringValue", "jsonPath"),
    ("function_call", "partial_args", "string_value", "json_path"),
    ("functionCall", "partial_args", "stringValue", "jsonPath"),
    ("function_call", "partialArgs", "string_value", "json_path"),
]


def _chunk(part: dict[str, Any], **candidate: Any) -> dict[str, Any]:
    return {"candidates": [{"content": {"role": "model", "parts": [part]}, **candidate}]}


def _partial_args_stream(call: str, pieces: str, value: str, path: str) -> str:
    """A call named ``send`` whose ``$.to`` argument (an address) is streamed in two pieces."""
    half = len(EMAIL) // 2
    chunks = [_chunk({call: {"name": "send", "willContinue": True}})]
    for piece in (EMAIL[:half], EMAIL[half:]):
        arg = {path: "$.to", value: piece, "willContinue": True}
        chunks.append(_chunk({call: {pieces: [arg], "willContinue": True}}))
    chunks.append(_chunk({"text": ""}, finishReason="STOP"))
    return "".join(sse(chunk) for chunk in chunks)


def _stream_event(gw: Gateway) -> dict[str, Any]:
    (event,) = [e for e in gw.audit() if str(e.get("operation", "")).startswith("response-stream:")]
    return event


def _joined_arguments(body: bytes) -> str:
    """What a client joining every piece of every chunk's streamed arguments reads."""
    text = ""
    for line in body.decode().splitlines():
        if not line.startswith("data: "):
            continue
        for candidate in json.loads(line[len("data: ") :]).get("candidates", ()):
            for part in candidate["content"]["parts"]:
                call = part.get("functionCall") or part.get("function_call") or {}
                for arg in call.get("partialArgs") or call.get("partial_args") or ():
                    text += arg.get("stringValue") or arg.get("string_value") or ""
    return text


@pytest.mark.parametrize(("call", "pieces", "value", "path"), SPELLINGS)
def test_an_address_cut_between_streamed_argument_pieces_never_reaches_the_client(
    tmp_path: Path, call: str, pieces: str, value: str, path: str
) -> None:
    wire = _partial_args_stream(call, pieces, value, path)
    with gateway_in_front(tmp_path, GEMINI_CONFIG) as gw:
        gw.upstream.queue(
            Reply(wire=[wire.encode()], headers={"content-type": "text/event-stream"})
        )
        response = httpx.post(f"{gw.url}{GEMINI_STREAM}?alt=sse", json=REQUEST, timeout=30)
        event = _stream_event(gw)
    assert response.status_code == 200
    assert EMAIL not in _joined_arguments(response.content)
    assert EMAIL[len(EMAIL) // 2 :].encode() not in response.content
    assert event["reason"] == "stream_inspection_error"


def test_the_json_array_form_with_streamed_argument_pieces_is_refused(tmp_path: Path) -> None:
    """Without ``?alt=sse`` the chunks come as one JSON array: nothing is sent yet, so the
    whole answer is refused."""
    chunks = [
        json.loads(line[len("data: ") :])
        for line in _partial_args_stream(*SPELLINGS[0]).splitlines()
        if line.startswith("data: ")
    ]
    with gateway_in_front(tmp_path, GEMINI_CONFIG) as gw:
        gw.upstream.queue(
            Reply(body=json.dumps(chunks).encode(), headers={"content-type": "application/json"})
        )
        response = httpx.post(f"{gw.url}{GEMINI_STREAM}", json=REQUEST, timeout=30)
    assert response.status_code == 502
    assert response.json()["error"] == "haechi_response_unprotected"
    assert EMAIL[len(EMAIL) // 2 :] not in response.text


def test_a_call_with_whole_arguments_still_streams(tmp_path: Path) -> None:
    """A call whose arguments come whole in one chunk (the usual stream), or with an empty
    list of pieces, is protected within its chunk and sent."""
    wire = "".join(
        sse(chunk)
        for chunk in (
            _chunk({"functionCall": {"name": "send", "args": {"to": EMAIL}, "partialArgs": []}}),
            _chunk({"text": "done"}, finishReason="STOP"),
        )
    )
    with gateway_in_front(tmp_path, GEMINI_CONFIG) as gw:
        gw.upstream.queue(
            Reply(wire=[wire.encode()], headers={"content-type": "text/event-stream"})
        )
        response = httpx.post(f"{gw.url}{GEMINI_STREAM}?alt=sse", json=REQUEST, timeout=30)
        event = _stream_event(gw)
    assert EMAIL.encode() not in response.content
    assert REDACTED.encode() in response.content
    assert event["reason"] == "stream_inspected"
