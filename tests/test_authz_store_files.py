# SPDX-License-Identifier: Apache-2.0
"""What the bearer provider and the token commands do with an ``auth.store`` that is not a
readable token file: a named pipe, text that is not UTF-8, JSON nested past the recursion
limit, an object giving a key twice. Each is refused as an unusable store (the gateway
denies, the command reports an error) instead of blocking or escaping as an internal error.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from haechi.auth import add_token
from tests.cli import run_haechi
from tests.test_proxy_auth import post_chat
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
    [
        (b"\xff\xfe{}", "not UTF-8"),
        (b"[" * 100_000, "not valid JSON"),
        (b'{"version": 1, "tokens": [], "tokens": []}', "gives a key twice in one object"),
    ],
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


def test_a_revocation_written_above_the_record_s_own_flag_is_not_lost(tmp_path: Path) -> None:
    """An operator revoking a token by hand writes ``"disabled": true`` at the top of its
    record, above the ``"disabled": false`` already there. Read keeping the last value, the
    token went on working while the file said it was revoked; the store is refused now
    (every request denied, as for any store that cannot be read), never read one way."""
    with gateway_in_front(tmp_path, {"auth": {"provider": "bearer"}}) as gateway:
        store = Path(gateway.runtime.config.auth.store)
        record, token = add_token(store, gateway.runtime.crypto, token_type="user")
        assert post_chat(gateway, token).status_code == 200
        text = store.read_text()
        opening = f'"id": "{record["id"]}"'
        store.write_text(text.replace(opening, f'"disabled": true, {opening}', 1))

        assert post_chat(gateway, token).status_code == 401
        assert len(gateway.upstream.received) == 1
        denial = [r for r in gateway.audit() if r.get("decision") == "auth_denied"]
        assert [r["reason"] for r in denial] == ["provider_error"]
