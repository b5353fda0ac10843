# SPDX-License-Identifier: Apache-2.0
"""The cross-frame window: split values, random chunkings, blocks, dials, frames."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from haechi.crypto import init_key_file
from haechi.errors import ProviderError
from haechi.runtime import Runtime, create_runtime
from haechi.stream_window import TextStreamProtector

SAMPLES = (
    "minji.kim@example.com",
    "010-1234-5678",
    "078-05-1120",
    "DE89370400440532013000",
    "call me at 010-9876-5432 today",
    "write to seoul@example.co.kr please",
)
FILLER = ("alpha", "bravo", "charlie", "delta", "echo", "note", "the answer is")


def _runtime(tmp: Path, **policy: Any) -> Runtime:
    init_key_file(tmp / "keys.json")
    return create_runtime(
        {
            "policy": {"mode": "enforce", **policy},
            "keys": {"keyFile": str(tmp / "keys.json")},
            "audit": {"sink": "memory"},
            "tokenVault": {"provider": "memory"},
            "streaming": {"maxMatchBytes": 32},
        }
    )


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Runtime:
    return _runtime(tmp_path_factory.mktemp("stream"))


def _stream(runtime: Runtime, **options: Any) -> TextStreamProtector:
    return runtime.stream_protector(protocol="openai-compatible", operation="chat", **options)


async def _feed(protector: TextStreamProtector, chunks: list[str]) -> str:
    out = [await protector.push(chunk) for chunk in chunks]
    out.append(await protector.flush())
    return "".join(out)


async def _whole(runtime: Runtime, text: str, **options: Any) -> str | None:
    result = await runtime.protect_text(
        text, direction="response", protocol="openai-compatible", operation="chat", **options
    )
    return result.text


@pytest.mark.anyio
async def test_an_email_split_character_by_character_is_redacted(runtime: Runtime) -> None:
    text = "Sure! Her address is minji.kim@example.com, write soon."
    protector = _stream(runtime)
    output = await _feed(protector, list(text))
    assert output == "Sure! Her address is [REDACTED:email], write soon."
    assert protector.summary() == {
        "detectionCount": 1,
        "byType": {"email": 1},
        "byAction": {"redact": 1},
    }
    assert not protector.blocked


@pytest.mark.anyio
async def test_nothing_is_released_until_the_window_is_passed(runtime: Runtime) -> None:
    protector = _stream(runtime)
    assert await protector.push("a" * 32) == ""
    assert await protector.push("b" * 8) == "a" * 8
    assert await protector.flush() == "a" * 24 + "b" * 8
    assert await protector.flush() == ""


@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    parts=st.lists(st.sampled_from(SAMPLES + FILLER), min_size=1, max_size=12),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=20),
)
@pytest.mark.anyio
async def test_random_chunkings_equal_protecting_the_whole_text(
    runtime: Runtime, parts: list[str], cuts: list[int]
) -> None:
    text = " ".join(parts)
    points = sorted({cut % (len(text) + 1) for cut in cuts})
    chunks = [
        text[start:end] for start, end in zip([0, *points], [*points, len(text)], strict=True)
    ]
    streamed = await _feed(_stream(runtime), chunks)
    assert streamed == await _whole(runtime, text)


@pytest.mark.anyio
async def test_a_key_released_earlier_still_gives_its_value_context(runtime: Runtime) -> None:
    head = "filler words " * 6 + "password="
    value = "hunter2hunter2hunter2"
    tail = " and more text follows here, quite a lot of it"
    protector = _stream(runtime)
    first = await protector.push(head)
    assert first  # the head is long enough to be partly released
    output = first + await protector.push(value + tail) + await protector.flush()
    assert protector.blocked  # the secret's action is block
    assert value not in output
    assert await _whole(runtime, head + value + tail) is None


@pytest.mark.anyio
async def test_a_block_mid_stream_never_releases_the_value(runtime: Runtime) -> None:
    protector = _stream(runtime)
    text = "intro text before the card " + "4111 1111 1111 1111" + " and after it " * 10
    released = [await protector.push(char) for char in text]
    released.append(await protector.flush())
    output = "".join(released)
    assert protector.blocked
    assert "4111" not in output
    assert output == text[: len(output)]
    assert await protector.push("more") == ""
    assert await protector.protect_text("x") is None
    assert await protector.protect_frame({"a": "b"}) is None
    assert protector.summary()["byAction"]["block"] == 1


@pytest.mark.anyio
async def test_report_only_releases_everything_but_counts(runtime: Runtime) -> None:
    protector = _stream(runtime, mode="report-only")
    text = "mail minji.kim@example.com and card 4111111111111111 " + "x" * 40
    assert await _feed(protector, [text[:10], text[10:]]) == text
    assert not protector.blocked
    assert protector.summary()["byAction"] == {"redact": 1, "block": 1}


@pytest.mark.anyio
async def test_precision_dials_apply_to_streams(tmp_path: Path) -> None:
    init_key_file(tmp_path / "keys.json")
    runtime = create_runtime(
        {
            "policy": {"mode": "enforce"},
            "keys": {"keyFile": str(tmp_path / "keys.json")},
            "audit": {"sink": "memory"},
            "tokenVault": {"provider": "memory"},
            "filters": {"allowlist": ["help@example.com", "4111111111111111"]},
        }
    )
    protector = _stream(runtime)
    text = "write help@example.com or user@example.com " + "." * 300
    output = await _feed(protector, [text[i : i + 7] for i in range(0, len(text), 7)])
    assert output.startswith("write help@example.com or [REDACTED:email] ")
    assert protector.summary()["suppressedByType"] == {"email": 1}
    blocked = _stream(runtime)
    await _feed(blocked, ["card 4111111111111111 ", "." * 300])
    assert blocked.blocked


@pytest.mark.anyio
async def test_frames_and_text_frames_are_protected_on_their_own(runtime: Runtime) -> None:
    protector = _stream(runtime)
    frame = {"choices": [{"delta": {"content": ""}, "tool": "mail a@example.com"}]}
    assert await protector.protect_frame(frame) == {
        "choices": [{"delta": {"content": ""}, "tool": "mail [REDACTED:email]"}]
    }
    assert await protector.protect_text("plain b@example.com") == "plain [REDACTED:email]"
    assert protector.summary()["detectionCount"] == 2
    assert await protector.protect_frame({"card": "4111111111111111"}) is None
    assert protector.blocked


@pytest.mark.anyio
async def test_tokens_issued_in_a_stream_are_recorded(tmp_path: Path) -> None:
    runtime = _runtime(tmp_path, actions={"email": "tokenize"})
    protector = _stream(runtime)
    output = await _feed(protector, ["to minji.kim", "@example.com ", "x" * 40])
    (token,) = protector.issued_tokens
    assert f"[TOKEN:{token}]" in output
    assert await runtime.detokenize(output, protector.issued_tokens) == (
        "to minji.kim@example.com " + "x" * 40
    )


@pytest.mark.anyio
async def test_a_value_longer_than_the_hold_limit_fails_closed(tmp_path: Path) -> None:
    runtime = _runtime(tmp_path, presets=[], actions={"secret": "redact"})
    secret = "Bearer " + "A1b2C3d4" * 200
    assert len(secret) > 16 * 32
    protector = _stream(runtime)
    output = await _feed(protector, ["Hello there. ", *re.findall(".{1,5}", secret)])
    assert output == "Hello there. "
    assert protector.blocked
    assert protector.summary()["byAction"] == {"block": 1}
    # Below the hold limit the same value is held whole and redacted.
    short = _stream(runtime)
    output = await _feed(short, [*re.findall(".{1,5}", "Bearer " + "A1b2C3d4" * 40), " bye"])
    assert output == "[REDACTED:secret] bye"
    reporting = _stream(runtime, mode="report-only")
    assert await _feed(reporting, re.findall(".{1,5}", secret)) == secret


@pytest.mark.anyio
async def test_an_internal_error_fails_the_stream_closed(tmp_path: Path) -> None:
    runtime = _runtime(tmp_path, actions={"email": "encrypt"})
    (tmp_path / "keys.json").write_text("{}", "utf-8")
    protector = _stream(runtime)
    with pytest.raises(ProviderError):
        await _feed(protector, ["mail minji.kim@example.com " + "x" * 40])
    assert protector.blocked
    assert await protector.push("more") == ""
