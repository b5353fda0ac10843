# SPDX-License-Identifier: Apache-2.0
"""What the bearer provider and the token commands do with an ``auth.store`` that is not a
readable token file: a named pipe, text that is not UTF-8, JSON nested past the recursion
limit. Each is refused as an unusable store (the gateway denies, the command reports an
error) instead of blocking or escaping as an internal error.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.cli import run_haechi
from tests.upstream_server import gateway_in_front

CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


@contextlib.contextmanager
def _pipe_at(path: Path) -> Iterator[None]:
    """A named pipe at ``path``; on the way out a writer opens and closes it once, so that a
    reader blocked in open() or read() gets to the end and the test cannot hang."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(path)
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))


def test_a_named_pipe_as_the_store_denies_without_blocking_the_gateway(tmp_path: Path) -> None:
    with gateway_in_front(tmp_path, {"auth": {"provider": "bearer"}}) as gateway:
        store = Path(gateway.runtime.config.auth.store)
        with _pipe_at(store), httpx.Client(base_url=gateway.url, timeout=10) as client:
            answer = client.post(
                "/v1/chat/completions", json=CHAT, headers={"authorization": "Bearer hae_x"}
            )
            assert answer.status_code == 401
            assert answer.json()["message"] == "Authentication failed"
            assert client.get("/__haechi/live").status_code == 200
        assert gateway.upstream.received == []
        denial = [r for r in gateway.audit() if r.get("decision") == "auth_denied"][-1]
        assert denial["reason"] == "provider_error"


def _project(tmp_path: Path) -> Path:
    run_haechi("init", cwd=tmp_path).check_returncode()
    return tmp_path / ".haechi" / "auth.json"


def test_token_commands_refuse_a_named_pipe_as_the_store(tmp_path: Path) -> None:
    store = _project(tmp_path)
    with _pipe_at(store):
        for command in (("token-add", "--type", "user"), ("token-list",)):
            result = run_haechi(*command, cwd=tmp_path, timeout=30)
            assert result.returncode != 0
            assert "auth store is not a regular file" in result.stderr


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"\xff\xfe{}", "not UTF-8"), (b"[" * 100_000, "not valid JSON")],
)
def test_token_commands_refuse_an_unreadable_store(
    tmp_path: Path, content: bytes, message: str
) -> None:
    store = _project(tmp_path)
    store.parent.mkdir(parents=True, exist_ok=True)
    store.write_bytes(content)
    for command in (("token-add", "--type", "user"), ("token-list",)):
        result = run_haechi(*command, cwd=tmp_path)
        assert result.returncode != 0
        assert message in result.stderr
        assert "internal error" not in result.stderr
    assert store.read_bytes() == content
