# SPDX-License-Identifier: Apache-2.0
"""An integer longer than Python writes as text (4300 digits by default).

Such a number cannot be scanned, and skipping it would let it through uninspected: the
library refuses the payload with a 413 :class:`~haechi.errors.LimitError`
(``haechi_number_too_long``), before anything is inspected or audited, as it refuses one
nested too deeply, never with Python's own ``ValueError``. The gateway does not get that far:
its JSON parser refuses such a body as invalid JSON (400, not forwarded, not audited).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

import haechi
from haechi.errors import LimitError
from haechi.runtime import Runtime
from tests.upstream_server import gateway_in_front

#: A number with 5001 digits, past Python's default limit of 4300.
HUGE = 10**5000
#: How the number begins when written out: never in a message or a record.
DIGITS = "1" + "0" * 40


def _records(runtime: Runtime) -> list[dict[str, Any]]:
    async def collect() -> list[dict[str, Any]]:
        return [record async for record in runtime.audit.store.records()]

    return asyncio.run(collect())


@pytest.mark.parametrize(
    "payload",
    [{"n": HUGE}, [1, {"deep": [-HUGE]}], HUGE],
    ids=["member", "nested-negative", "root"],
)
def test_protect_refuses_a_huge_integer_with_a_limit_error(
    memory_runtime: Runtime, payload: Any
) -> None:
    before = len(_records(memory_runtime))
    with pytest.raises(LimitError) as refused:
        memory_runtime.protect_sync(payload)
    assert isinstance(refused.value, haechi.HaechiError)
    assert refused.value.status_code == 413
    assert refused.value.error_code == "haechi_number_too_long"
    assert refused.value.__cause__ is None
    assert DIGITS not in str(refused.value)
    assert len(_records(memory_runtime)) == before  # refused before anything was inspected


def test_scan_refuses_a_huge_integer_with_a_limit_error(memory_runtime: Runtime) -> None:
    with pytest.raises(LimitError) as refused:
        memory_runtime.scan({"n": HUGE})
    assert refused.value.error_code == "haechi_number_too_long"


def test_an_integer_of_as_many_digits_as_the_limit_is_scanned(memory_runtime: Runtime) -> None:
    assert memory_runtime.scan({"n": 10**4299, "mail": "jane.doe@example.com"}) != []


def test_the_gateway_refuses_a_body_with_a_huge_integer_as_invalid_json(tmp_path: Path) -> None:
    number = b"1" + b"0" * 5000
    body = b'{"model":"m","n":%s,"messages":[{"role":"user","content":"hi"}]}' % number
    with gateway_in_front(tmp_path) as gateway:
        response = httpx.post(f"{gateway.url}/v1/chat/completions", content=body, timeout=30)
        assert response.status_code == 400
        assert response.json()["error"] == "haechi_invalid_json_request"
        assert DIGITS not in response.text
        assert gateway.upstream.received == []
        assert gateway.audit() == []
