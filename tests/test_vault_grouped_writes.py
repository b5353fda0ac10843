# SPDX-License-Identifier: Apache-2.0
"""The tokens of one payload are stored together, not one file rewrite per value.

The local vault rewrites its whole file for every change; stored one after the other, a
payload of a thousand values took seconds. Its values are now tokenized concurrently and the
file store writes the puts that wait together: these tests count the rewrites, check that
every token still stands for its own value, and that a failed write fails the payload
closed without leaving a put waiting.
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import pytest

import haechi
import haechi.vault._file_store as file_store
from haechi._filelock import atomic_write
from haechi.crypto import init_key_file
from haechi.errors import HaechiError
from haechi.providers import TokenRecord
from haechi.runtime import Runtime
from haechi.vault import FileTokenStore

TOKEN = re.compile(r"\[TOKEN:(tok_[a-z0-9_]+)\]")


@pytest.fixture
def writes(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The vault file rewrites made during the test (the real writes, counted)."""
    made: list[Path] = []
    real = atomic_write

    def counted(path: Path, data: bytes, *, mode: int) -> None:
        made.append(path)
        real(path, data, mode=mode)

    monkeypatch.setattr(file_store, "atomic_write", counted)
    return made


def _runtime(tmp_path: Path, **vault: Any) -> Runtime:
    init_key_file(tmp_path / "keys.json")
    return haechi.create_runtime(
        {
            "mode": "enforce",
            "audit": {"path": str(tmp_path / "audit.jsonl")},
            "keys": {"keyFile": str(tmp_path / "keys.json")},
            "tokenVault": {"path": str(tmp_path / "vault.json"), **vault},
            "policy": {"actions": {"email": "tokenize"}},
        }
    )


def _emails(count: int) -> list[str]:
    return [f"user{number}@example.com" for number in range(count)]


@pytest.mark.anyio
async def test_a_payload_of_many_values_takes_a_few_rewrites_and_each_token_keeps_its_value(
    tmp_path: Path, writes: list[Path]
) -> None:
    runtime = _runtime(tmp_path)
    text_values, row_values = _emails(300), [f"row{n}@example.org" for n in range(40)]
    payload = {"text": " and ".join(text_values), "rows": row_values}

    result = await runtime.protect(payload, direction="request")

    protected = result.payload
    text_tokens = TOKEN.findall(protected["text"])
    row_tokens = [TOKEN.fullmatch(row)[1] for row in protected["rows"]]  # type: ignore[index]
    assert len(text_tokens) == 300
    assert len(set(text_tokens + row_tokens)) == 340
    assert len(writes) <= 6  # one rewrite per value was 340
    stored = json.loads((tmp_path / "vault.json").read_text())["tokens"]
    assert set(stored) == set(text_tokens + row_tokens)
    restored = await runtime.detokenize(protected, text_tokens + row_tokens)
    assert restored == payload
    await runtime.aclose()


@pytest.mark.anyio
async def test_equal_values_in_one_payload_share_one_deterministic_token(
    tmp_path: Path, writes: list[Path]
) -> None:
    runtime = _runtime(tmp_path, deterministic=True)
    values = _emails(20) * 3
    payload = {"text": " ".join(values)}

    protected = (await runtime.protect(payload, direction="request")).payload

    tokens = TOKEN.findall(protected["text"])
    assert tokens[:20] == tokens[20:40] == tokens[40:]
    assert len(set(tokens)) == 20
    stored = json.loads((tmp_path / "vault.json").read_text())["tokens"]
    assert set(stored) == set(tokens)
    assert await runtime.detokenize(protected, tokens) == payload
    await runtime.aclose()


@pytest.mark.anyio
async def test_a_vault_that_cannot_be_read_fails_the_payload_closed_and_stores_nothing(
    tmp_path: Path,
) -> None:
    runtime = _runtime(tmp_path)
    vault = tmp_path / "vault.json"
    vault.write_text("not a vault")

    with pytest.raises(HaechiError):
        await asyncio.wait_for(
            runtime.protect({"text": " ".join(_emails(25))}, direction="request"), 60
        )

    assert vault.read_text() == "not a vault"
    audit = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert (audit[-1]["decision"], audit[-1]["reason"]) == (
        "internal_error",
        "internal_error:VaultError",
    )
    assert "user0@example.com" not in json.dumps(audit)
    await runtime.aclose()


def _record(number: int) -> TokenRecord:
    return {"type": "email", "metadata": {"n": number}}  # type: ignore[typeddict-item]


@pytest.mark.anyio
async def test_puts_waiting_together_keep_their_order_and_their_own_results(
    tmp_path: Path, writes: list[Path]
) -> None:
    store = FileTokenStore(tmp_path / "vault.json")
    await store.put("tok_a", _record(0))

    results = await asyncio.gather(
        store.put("tok_b", _record(1)),
        store.put("tok_a", _record(2), only_if_absent=True),
        store.put("tok_b", _record(3)),
        store.put("tok_c", _record(4), only_if_absent=True),
    )

    assert list(results) == [True, False, True, True]
    assert len(writes) == 2
    assert (await store.get("tok_a")) == _record(0)
    assert (await store.get("tok_b")) == _record(3)
    assert (await store.get("tok_c")) == _record(4)


@pytest.mark.anyio
async def test_a_cancelled_put_leaves_the_others_written(tmp_path: Path) -> None:
    store = FileTokenStore(tmp_path / "vault.json")
    first = asyncio.ensure_future(store.put("tok_a", _record(0)))
    waiting = [asyncio.ensure_future(store.put(f"tok_{n}", _record(n))) for n in range(1, 6)]
    await asyncio.sleep(0)
    waiting[0].cancel()

    assert await first is True
    outcomes = await asyncio.gather(*waiting, return_exceptions=True)

    assert isinstance(outcomes[0], asyncio.CancelledError)
    assert outcomes[1:] == [True] * 4
    for number in range(2, 6):
        assert (await store.get(f"tok_{number}")) == _record(number)
