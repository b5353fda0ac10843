# SPDX-License-Identifier: Apache-2.0
"""A value cut between two output items of a Responses API answer is protected.

The openai SDK's ``response.output_text`` joins the ``text`` of every ``output_text`` part
of every ``message`` item of ``output``, with no separator, so an address whose first half
ends one message item and whose second half starts the next reaches a client reading it
whole. Those parts are scanned joined, in a non-streamed answer and in the full response a
stream's ``response.completed`` event carries. Refusal parts are left out of that join, as
the SDK leaves them out of ``output_text``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openai.types.responses import ResponseCompletedEvent, ResponseIncompleteEvent

from haechi import create_runtime
from haechi.pieces import find_piece_runs
from haechi.runtime import Runtime
from tests.stream_fixtures import EMAIL, INSPECT_REDACTING, REDACTED, sse
from tests.upstream_server import Gateway, Reply, gateway_in_front

pytestmark = pytest.mark.anyio

CARD = "4111 1111 1111 1111"
HEAD, TAIL = "Contact: jane.doe@", "example.com thanks"


def _part(text: str, *, logprobs: bool = False) -> dict[str, Any]:
    """An ``output_text`` part; with ``logprobs``, its text as one token per character."""
    part: dict[str, Any] = {"type": "output_text", "text": text, "annotations": []}
    if logprobs:
        part["logprobs"] = [
            {"token": char, "logprob": -0.1, "bytes": list(char.encode()), "top_logprobs": []}
            for char in text
        ]
    return part


def _refusal(text: str) -> dict[str, Any]:
    return {"type": "refusal", "refusal": text}


def _message(number: int, *parts: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "message",
        "id": f"msg_{number}",
        "status": "completed",
        "role": "assistant",
        "content": list(parts),
    }


def _reasoning(number: int, *summaries: str) -> dict[str, Any]:
    return {
        "type": "reasoning",
        "id": f"rs_{number}",
        "summary": [{"type": "summary_text", "text": text} for text in summaries],
    }


def _response(*items: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "resp_1",
        "object": "response",
        "created_at": 1,
        "status": "completed",
        "model": "m",
        "output": list(items),
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
    }


def output_text(response: dict[str, Any]) -> str:
    """What the openai SDK's ``Response.output_text`` reads: the text of every
    ``output_text`` part of every message item, in order, joined with no separator."""
    return "".join(
        part["text"]
        for item in response["output"]
        if item.get("type") == "message"
        for part in item["content"]
        if part.get("type") == "output_text" and part.get("text") is not None
    )


def _redacting() -> Runtime:
    return create_runtime(
        {
            "mode": "enforce",
            "audit": {"sink": "memory"},
            "tokenVault": {"provider": "memory"},
            "policy": {"actions": {"email": "redact"}},
        }
    )


@pytest.fixture
def runtime(pieces_runtime: Runtime) -> Runtime:
    """Tokenizes addresses, blocks cards."""
    return pieces_runtime


# -- finding the run ------------------------------------------------------------------------


def test_the_output_texts_of_several_message_items_are_one_run() -> None:
    """One run holds every output_text part of the message items, in the SDK's order;
    refusals and reasoning are not in it, and the content lists it reads are not also read
    by the adjacent-parts rule (the same join scanned twice), while a reasoning item's
    summaries still are."""
    answer = _response(
        _message(0, _part("a"), _part("b")),
        _reasoning(1, "s1", "s2"),
        _message(2, _refusal("no"), _part("c")),
    )
    runs = find_piece_runs(answer, answer=True)
    assert sorted((run.where, run.text) for run in runs) == [
        (("output",), output_text(answer)),
        (("output", 1, "summary", 0), "s1s2"),
    ]
    (joined,) = [run for run in runs if run.places]
    assert [joined.leaf(index) for index in range(3)] == [
        ("output", 0, "content", 0, "text"),
        ("output", 0, "content", 1, "text"),
        ("output", 2, "content", 1, "text"),
    ]


def test_a_single_message_item_keeps_the_adjacent_parts_rule_alone() -> None:
    answer = _response(_reasoning(0, "thinking"), _message(1, _part("a"), _part("b")))
    runs = find_piece_runs(answer, answer=True)
    assert [(run.where, run.text, run.places) for run in runs] == [
        (("output", 1, "content", 0), "ab", ())
    ]


# -- through the library --------------------------------------------------------------------


async def test_an_address_cut_between_two_items_is_redacted(runtime: Runtime) -> None:
    """The cut address is redacted where it starts and removed from the next item; the
    parts it covers lose their token lists, which spell its halves. An address whole in
    one part next to it keeps the policy's own action (tokenize) and is counted once."""
    answer = _response(
        _message(0, _part(f"Copy {EMAIL}. "), _part(HEAD, logprobs=True)),
        _message(1, _part(TAIL, logprobs=True)),
    )
    assert EMAIL in output_text(answer)
    result = await runtime.protect(answer, direction="response")
    text = output_text(result.payload)
    assert EMAIL not in text
    assert text.startswith("Copy [TOKEN:tok_email_")
    assert text.endswith(f". Contact: {REDACTED} thanks")
    assert result.summary["byType"] == {"email": 2}
    first, second = result.payload["output"][0]["content"], result.payload["output"][1]["content"]
    assert (first[1]["text"], first[1]["logprobs"]) == (f"Contact: {REDACTED}", [])
    assert (second[0]["text"], second[0]["logprobs"]) == (" thanks", [])
    assert "jane.doe" not in json.dumps(result.payload)
    assert output_text(answer) == f"Copy {EMAIL}. {HEAD}{TAIL}"  # the caller's is unchanged


async def test_a_card_cut_between_two_items_blocks_the_answer(runtime: Runtime) -> None:
    answer = _response(
        _message(0, _part(f"pay with {CARD[:9]}")),
        _reasoning(1, "checking"),
        _message(2, _part(f"{CARD[9:]} today")),
    )
    result = await runtime.protect(answer, direction="response")
    assert result.blocked
    assert result.payload is None
    assert result.summary["byType"] == {"card": 1}


async def test_an_address_cut_between_an_output_text_and_a_refusal_is_not_joined() -> None:
    """The SDK joins output_text parts only, refusals being a separate reading: ``jane.doe@``
    then a refusal starting ``example.com`` is no address to a client reading
    ``output_text``, and is left as it is (a client that joins refusals to the output text
    itself would see one). Past the refusal, the next output_text continues the text: the
    ``jane.doe@example.org`` they make is redacted, the refusal untouched."""
    runtime = _redacting()
    refused = _response(_message(0, _part(HEAD)), _message(1, _refusal(TAIL)))
    alone = await runtime.protect(refused, direction="response")
    assert (alone.payload, alone.summary["byType"]) == (refused, {})
    answer = _response(*refused["output"], _message(2, _part("example.org later")))
    result = await runtime.protect(answer, direction="response")
    assert output_text(result.payload) == f"Contact: {REDACTED} later"
    assert result.payload["output"][1] == answer["output"][1]
    assert result.summary["byType"] == {"email": 1}


async def test_report_only_counts_the_cut_address_and_changes_nothing() -> None:
    runtime = create_runtime(
        {"mode": "report-only", "audit": {"sink": "memory"}, "tokenVault": {"provider": "memory"}}
    )
    answer = _response(_message(0, _part(HEAD)), _message(1, _part(TAIL)))
    result = await runtime.protect(answer, direction="response")
    assert result.payload == answer
    assert result.summary["byType"] == {"email": 1}
    assert [finding.path for finding in result.findings] == [("output",)]


AROUND = st.text(alphabet="ab ,.", max_size=8)


@settings(max_examples=60, deadline=None)
@given(
    prefix=AROUND,
    suffix=AROUND,
    cut=st.integers(min_value=0, max_value=len(EMAIL)),
    between=st.booleans(),
)
def test_any_cut_of_the_address_between_two_items_is_protected(
    prefix: str, suffix: str, cut: int, between: bool
) -> None:
    """Wherever the address is cut between two message items (a reasoning item between
    them or not; a cut at either end leaves it whole in one item), the joined output_text
    never shows it and reads as the protected text."""
    first, second = (
        _message(0, _part(f"{prefix} {EMAIL[:cut]}")),
        _message(2, _part(f"{EMAIL[cut:]} {suffix}")),
    )
    items = (first, _reasoning(1, "hmm"), second) if between else (first, second)
    result = asyncio.run(_redacting().protect(_response(*items), direction="response"))
    text = output_text(result.payload)
    assert EMAIL not in text
    assert text == f"{prefix} {REDACTED} {suffix}"
    assert result.summary["byType"] == {"email": 1}


# -- through the gateway, with the official client ------------------------------------------


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[Gateway]:
    with gateway_in_front(tmp_path, INSPECT_REDACTING) as gw:
        yield gw


def _client(gateway: Gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="sk-test", max_retries=0)


def test_the_openai_client_reads_no_cut_address(gateway: Gateway) -> None:
    answer = _response(_message(0, _part(HEAD)), _message(1, _part(TAIL)))
    gateway.upstream.queue(
        Reply(body=json.dumps(answer).encode(), headers={"content-type": "application/json"})
    )
    response = _client(gateway).responses.create(model="m", input="hi")
    assert response.output_text == f"Contact: {REDACTED} thanks"
    assert EMAIL not in response.model_dump_json()


def _streamed(end: str, *items: dict[str, Any]) -> str:
    """A Responses stream of message ``items`` as real servers send it: each item added,
    each part opened, streamed a few characters per delta and closed, each item done, then
    the ``end`` event (``completed``, ``incomplete``) carrying the whole response."""
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": {**_response(), "status": "in_progress"}}
    ]
    for number, item in enumerate(items):
        events.append(
            {
                "type": "response.output_item.added",
                "output_index": number,
                "item": {**item, "status": "in_progress", "content": []},
            }
        )
        for index, part in enumerate(item["content"]):
            place = {"item_id": item["id"], "output_index": number, "content_index": index}
            text = part["text"]
            events.append(
                {"type": "response.content_part.added", **place, "part": {**part, "text": ""}}
            )
            events += [
                {"type": "response.output_text.delta", **place, "delta": text[i : i + 5]}
                for i in range(0, len(text), 5)
            ]
            events.append({"type": "response.output_text.done", **place, "text": text})
            events.append({"type": "response.content_part.done", **place, "part": part})
        events.append({"type": "response.output_item.done", "output_index": number, "item": item})
    events.append({"type": f"response.{end}", "response": {**_response(*items), "status": end}})
    return "".join(
        sse({**event, "sequence_number": number}, event=event["type"])
        for number, event in enumerate(events)
    )


@pytest.mark.parametrize("end", ["completed", "incomplete"])
def test_the_last_event_of_a_stream_shows_no_cut_address(gateway: Gateway, end: str) -> None:
    """Each ``.done`` event repeats one part, which alone shows half an address; the event
    ending the stream carries both items, which the SDK reads joined (the final response of
    a completed stream, the response of an incomplete one)."""
    wire = _streamed(end, _message(0, _part(HEAD)), _message(1, _part(TAIL)))
    gateway.upstream.queue(Reply(wire=[wire.encode()]))
    with _client(gateway).responses.stream(model="m", input="hi") as stream:
        events = list(stream)
        if end == "completed":
            assert EMAIL not in stream.get_final_response().output_text
    (last,) = [event for event in events if event.type == f"response.{end}"]
    assert isinstance(last, ResponseCompletedEvent | ResponseIncompleteEvent)
    assert last.response.output_text == f"Contact: {REDACTED} thanks"
    assert not any(EMAIL in event.model_dump_json(warnings=False) for event in events)
