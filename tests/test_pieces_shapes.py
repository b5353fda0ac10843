# SPDX-License-Identifier: Apache-2.0
"""Values cut across pieces in the shapes providers use: token log-probabilities of each
provider, empty and look-alike pieces, text parts with context in the previous part, and
report-only mode. Each test checks the value does not survive in enforce mode."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from haechi import create_runtime
from haechi.runtime import Runtime

pytestmark = pytest.mark.anyio


@pytest.fixture
def runtime(pieces_runtime: Runtime) -> Runtime:
    return pieces_runtime


EMAIL = "john.doe@example.com"
CARD = "4111 1111 1111 1111"


def _tok(text: str, alternatives: list[str] | None = None) -> dict[str, Any]:
    return {
        "token": text,
        "logprob": -0.1,
        "bytes": list(text.encode()),
        "top_logprobs": [
            {"token": alt, "logprob": -1.0, "bytes": list(alt.encode())}
            for alt in (alternatives if alternatives is not None else [text])
        ],
    }


def _chat(content: str, tokens: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": "c",
        "object": "chat.completion",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "logprobs": {"content": tokens, "refusal": None},
                "finish_reason": "stop",
            }
        ],
    }


# -- token log-probabilities ----------------------------------------------------------


async def test_legacy_llama_cpp_probabilities(runtime: Runtime) -> None:
    """llama.cpp's older /completion shape: {"content": piece, "probs": [{"tok_str"...}]}."""
    pieces = ["Mail", " john", ".doe", "@example", ".com"]
    answer = {
        "content": "Mail [REDACTED:email]",
        "completion_probabilities": [
            {"content": p, "probs": [{"tok_str": p, "prob": 0.9}]} for p in pieces
        ],
        "stop": True,
    }
    result = await runtime.protect(answer, direction="response")
    joined = "".join(p["content"] for p in result.payload["completion_probabilities"])
    assert EMAIL not in joined, joined


async def test_token_pieces_with_empty_and_fullwidth(runtime: Runtime) -> None:
    pieces = ["Mail", " john", "", ".doe", "\uff20", "example", "", ".com", " ok"]
    tokens = [_tok(p) for p in pieces]
    result = await runtime.protect(_chat("nothing", tokens), direction="response")
    joined = "".join(t["token"] for t in result.payload["choices"][0]["logprobs"]["content"])
    assert "john.doe" not in joined, joined
    assert "example.com" not in joined, joined


async def test_gemini_chosen_candidates_and_top(runtime: Runtime) -> None:
    pieces = ["Mail", " john", ".doe", "@example", ".com"]
    answer = {
        "candidates": [
            {
                "content": {"parts": [{"text": "nothing"}], "role": "model"},
                "logprobsResult": {
                    "topCandidates": [
                        {"candidates": [{"token": p, "logProbability": -0.1}]} for p in pieces
                    ],
                    "chosenCandidates": [{"token": p, "logProbability": -0.1} for p in pieces],
                },
            }
        ]
    }
    result = await runtime.protect(answer, direction="response")
    lp = result.payload["candidates"][0]["logprobsResult"]
    chosen = "".join(c["token"] for c in lp["chosenCandidates"])
    top = "".join(c["token"] for t in lp["topCandidates"] for c in t.get("candidates", []))
    assert EMAIL not in chosen, chosen
    assert EMAIL not in top, top


async def test_card_across_tokens_mask_policy(tmp_path: Path) -> None:
    runtime = create_runtime(
        {
            "mode": "enforce",
            "audit": {"sink": "memory"},
            "tokenVault": {"provider": "memory"},
            "policy": {"actions": {"email": "mask", "card": "mask"}},
        }
    )
    pieces = ["pay ", "4111", " 1111", " 11", "11 1111", " ok"]
    result = await runtime.protect(_chat("x", [_tok(p) for p in pieces]), direction="response")
    if result.payload is not None:
        joined = "".join(t["token"] for t in result.payload["choices"][0]["logprobs"]["content"])
        assert CARD not in joined, joined
        assert "41111111" not in joined.replace(" ", ""), joined


async def test_ollama_token_list(runtime: Runtime) -> None:
    pieces = ["Mail", " john", ".doe", "@example", ".com"]
    answer = {
        "model": "m",
        "message": {"role": "assistant", "content": "nothing"},
        "logprobs": [
            {
                "token": p,
                "logprob": -0.1,
                "bytes": list(p.encode()),
                "top_logprobs": [{"token": p, "logprob": -0.1}],
            }
            for p in pieces
        ],
        "done": True,
    }
    result = await runtime.protect(answer, direction="response")
    joined = "".join(t["token"] for t in result.payload["logprobs"])
    raw = bytes(b for t in result.payload["logprobs"] for b in t.get("bytes", []))
    assert EMAIL not in joined
    assert EMAIL.encode() not in raw


async def test_report_only_changes_nothing(tmp_path: Path) -> None:
    runtime = create_runtime(
        {"mode": "report-only", "audit": {"sink": "memory"}, "tokenVault": {"provider": "memory"}}
    )
    content = [{"type": "text", "text": "john.doe@"}, {"type": "text", "text": "example.com"}]
    body = {"messages": [{"role": "user", "content": content}]}
    result = await runtime.protect(body, direction="request")
    assert result.payload == body
    assert result.summary["byType"] == {"email": 1}


# -- adjacent text parts ----------------------------------------------------------------


def _request_parts(parts: list[str]) -> dict[str, Any]:
    return {
        "model": "m",
        "messages": [{"role": "user", "content": [{"type": "text", "text": p} for p in parts]}],
    }


def _sent(result: Any) -> str:
    return "".join(p["text"] for p in result.payload["messages"][0]["content"])


async def test_a_secret_whose_key_is_in_the_previous_part_is_found(runtime: Runtime) -> None:
    """What makes a value a secret ("password=") is in one part and the value in the next:
    the joined finding lies inside one part, which alone shows nothing; it counts."""
    value = "Tr0ub4dor&3xyz"
    assert runtime.scan({"t": value}) == [], "the value alone is nothing"
    request = await runtime.protect(_request_parts(["my password=", value]), direction="request")
    assert request.blocked
    assert request.summary["byType"] == {"secret": 1}
    answer = {
        "type": "message",
        "role": "assistant",
        "content": [{"type": "text", "text": "the password: "}, {"type": "text", "text": value}],
    }
    response = await runtime.protect(answer, direction="response")
    assert response.blocked


async def test_email_across_three_parts_with_empty(runtime: Runtime) -> None:
    result = await runtime.protect(
        _request_parts(["Mail john.doe", "", "@exam", "ple.com now"]), direction="request"
    )
    assert EMAIL not in _sent(result), _sent(result)


async def test_fullwidth_at_across_parts(runtime: Runtime) -> None:
    result = await runtime.protect(
        _request_parts(["Mail john.doe", "\uff20example.com now"]), direction="request"
    )
    sent = _sent(result)
    assert "john.doe" not in sent, sent
    assert "example.com" not in sent, sent


async def test_many_one_char_parts(runtime: Runtime) -> None:
    text = "x" * 3000 + " Mail " + EMAIL + " now"
    result = await runtime.protect(_request_parts(list(text)), direction="request")
    assert EMAIL not in _sent(result)


async def test_card_across_parts_blocks(runtime: Runtime) -> None:
    result = await runtime.protect(
        _request_parts(["pay 4111 1111", " 1111 1111 now"]), direction="request"
    )
    assert result.blocked
    assert result.payload is None


async def test_leaf_and_joined_findings_of_different_types(runtime: Runtime) -> None:
    """A piece whose own scan finds a card while the joined text finds an email across the
    pieces: both must be protected."""
    tokens = [_tok(p) for p in ["x 4111111111111111 john", ".doe@", "example.com"]]
    result = await runtime.protect(_chat("x", tokens), direction="response")
    assert result.blocked or (
        EMAIL not in json.dumps(result.payload)
        and "4111111111111111" not in json.dumps(result.payload)
    )


async def test_gemini_parts_request(runtime: Runtime) -> None:
    body = {
        "contents": [
            {"role": "user", "parts": [{"text": "Mail john.doe@"}, {"text": "example.com"}]}
        ]
    }
    result = await runtime.protect(body, direction="request")
    joined = "".join(p["text"] for p in result.payload["contents"][0]["parts"])
    assert EMAIL not in joined, joined


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("my password=", "Tr0ub4dor&3xyz"),
        ("aws_secret_access_key = ", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
        ("api_key=", "a8f3kq93mzv81xq2"),
    ],
)
async def test_secret_assignment_key_and_value_in_adjacent_parts(
    runtime: Runtime, key: str, value: str
) -> None:
    """In one part the assignment blocks (a hard-block secret); cut between the key and the
    value into two adjacent text parts, the joined finding lies inside the second part only,
    is not counted, and the request goes upstream unchanged."""
    whole = await runtime.protect(_request_parts([key + value]), direction="request")
    assert whole.blocked, "control: in one part the secret blocks"
    split = await runtime.protect(_request_parts([key, value]), direction="request")
    assert split.blocked or value not in _sent(split), (split.summary, _sent(split))


async def test_consecutive_thinking_blocks_are_read_as_one_text(runtime: Runtime) -> None:
    answer = {
        "type": "message",
        "role": "assistant",
        "content": [
            {"type": "thinking", "thinking": "mail john.doe@", "signature": "c2ln"},
            {"type": "thinking", "thinking": "example.com later", "signature": "c2ln"},
            {"type": "text", "text": "Done."},
        ],
    }
    result = await runtime.protect(answer, direction="response")
    blocks = result.payload["content"]
    assert [block.get("thinking") for block in blocks[:2]] == [
        "mail [REDACTED:email]",
        " later",
    ]
    assert blocks[2]["text"] == "Done."


def _responses_output(parts: list[list[str]]) -> dict[str, Any]:
    """A Responses API answer whose message has one ``output_text`` part per list of
    pieces, each part with its ``logprobs``."""
    content = [
        {
            "type": "output_text",
            "text": "".join(pieces),
            "annotations": [],
            "logprobs": [_tok(piece) for piece in pieces],
        }
        for pieces in parts
    ]
    return {
        "id": "resp_1",
        "object": "response",
        "output": [{"type": "message", "role": "assistant", "content": content}],
    }


async def test_responses_logprobs_of_parts_a_value_crosses(runtime: Runtime) -> None:
    """An address cut between two output_text parts: the parts' texts are read joined, and
    each part's own token list shows only a piece of it, so the token lists of the parts the
    value crosses are emptied."""
    answer = _responses_output([["Mail", " john", ".doe"], ["@example", ".com"], [" ok"]])
    result = await runtime.protect(answer, direction="response")
    content = result.payload["output"][0]["content"]
    assert "".join(part["text"] for part in content) == "Mail [REDACTED:email] ok"
    assert [len(part["logprobs"]) for part in content] == [0, 0, 1]
    serialized = json.dumps(result.payload)
    for fragment in ("john", ".doe", "@example"):
        assert fragment not in serialized, fragment


async def test_responses_logprobs_of_a_part_that_needs_the_previous_one(tmp_path: Path) -> None:
    """The key word in one part, the secret in the next: the next part's token list alone
    shows nothing, and is emptied with its text."""
    runtime = create_runtime(
        {
            "mode": "enforce",
            "audit": {"sink": "memory"},
            "tokenVault": {"provider": "memory"},
            "policy": {"presets": ["llm-redact"], "actions": {"secret": "redact"}},
        }
    )
    answer = _responses_output([["the", " password="], ["Tr0", "ub4dor", "Xyz93"], [" ok"]])
    result = await runtime.protect(answer, direction="response")
    assert not result.blocked
    content = result.payload["output"][0]["content"]
    assert [part["text"] for part in content] == ["the password=", "[REDACTED:secret]", " ok"]
    assert [len(part["logprobs"]) for part in content] == [2, 0, 1]
    assert "ub4dor" not in json.dumps(result.payload)
