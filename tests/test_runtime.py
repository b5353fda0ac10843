# SPDX-License-Identifier: Apache-2.0
"""Composition of the runtime: configuration, injected providers, lazy providers, facade."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import pytest

from haechi.audit import AuditSink, MemoryAuditStore
from haechi.config import default_config
from haechi.crypto import LocalCryptoProvider, init_key_file
from haechi.errors import ConfigError, CryptoError
from haechi.models import Identity
from haechi.ratelimit import MemoryRateLimiter
from haechi.runtime import create_runtime
from haechi.vault import MemoryTokenStore


@pytest.fixture(autouse=True)
def _workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def test_defaults_compose_without_touching_the_disk() -> None:
    runtime = create_runtime()
    assert runtime.config == default_config()
    assert runtime.token_vault is not None
    assert isinstance(runtime.audit, AuditSink)
    assert runtime.warnings == ()
    assert not Path(".haechi").exists()


def test_a_mapping_is_validated_like_a_file() -> None:
    with pytest.raises(ConfigError, match="unknown key"):
        create_runtime({"bogus": 1})
    with pytest.raises(ConfigError, match="Unknown policy preset"):
        create_runtime({"policy": {"presets": ["nope"]}})


def test_unknown_provider_keys_are_misuse() -> None:
    with pytest.raises(TypeError, match="unknown provider keys"):
        create_runtime(None, {"vault": object()})


def test_external_providers_must_be_injected(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"keys\.provider"):
        create_runtime({"keys": {"provider": "external"}})
    with pytest.raises(ConfigError, match=r"auth\.provider"):
        create_runtime({"auth": {"provider": "external"}})
    init_key_file(tmp_path / "k.json")
    crypto = LocalCryptoProvider(tmp_path / "k.json")
    runtime = create_runtime({"keys": {"provider": "external"}}, {"crypto": crypto})
    assert runtime.crypto is crypto


def test_injected_providers_win(tmp_path: Path) -> None:
    store = MemoryAuditStore()
    tokens = MemoryTokenStore()
    limiter = MemoryRateLimiter()
    runtime = create_runtime(
        {"policy": {"mode": "enforce", "actions": {"email": "tokenize"}}},
        {"audit_store": store, "token_store": tokens, "rate_limiter": limiter},
    )
    init_key_file(".haechi/dev.keys.json")
    result = runtime.protect_sync({"a": "mail a@example.com"})
    assert not Path(".haechi/audit.jsonl").exists()
    assert not Path(".haechi/token-vault.json").exists()
    assert runtime.rate_limiter is limiter
    assert result.issued_tokens


@pytest.mark.parametrize(
    ("key", "missing"),
    [
        ("rate_limiter", "allow()"),
        ("metrics", "increment(), observe(), render()"),
        ("auth", "authenticate()"),
        ("crypto", "decrypt(), encrypt(), hmac()"),
        ("audit_store", "append(), ready(), records()"),
        ("token_store", "delete(), delete_expired(), get(), items(), put(), ready()"),
    ],
)
def test_an_injected_provider_without_its_methods_is_refused(key: str, missing: str) -> None:
    # Refused when the runtime is made, not by a 500 on the first request that needs it.
    with pytest.raises(
        TypeError, match=rf"the injected {key} provider lacks {re.escape(missing)}$"
    ):
        create_runtime(None, {key: object()})


def test_without_a_vault_tokens_are_one_way_labels() -> None:
    runtime = create_runtime(
        {"policy": {"mode": "enforce", "actions": {"email": "tokenize"}}}, {"token_vault": None}
    )
    result = runtime.protect_sync({"a": "mail a@example.com"})
    assert re.fullmatch(r"mail \[TOKEN:email:[0-9a-f]{12}\]", result.payload["a"])
    assert result.issued_tokens == ()


def test_lazy_providers_are_built_once_on_first_use() -> None:
    runtime = create_runtime()
    assert runtime.auth is None
    limiter = runtime.rate_limiter
    assert limiter is runtime.rate_limiter
    assert type(limiter).name == "memory"
    assert type(runtime.metrics).name == "prometheus"
    bearer = create_runtime({"auth": {"provider": "bearer"}})
    assert type(bearer.auth).name == "bearer"


def test_mode_defaults_to_the_configuration_and_the_argument_wins() -> None:
    runtime = create_runtime({"mode": "enforce"})
    with pytest.raises(ValueError, match="mode"):
        runtime.protect_sync({"a": "a@example.com"}, mode="enforced")
    with pytest.raises(ValueError, match="direction"):
        runtime.scan({"a": "x"}, direction="inbound")  # type: ignore[arg-type]
    assert runtime.protect_sync({"a": "a@example.com"}).payload == {"a": "[REDACTED:email]"}
    dry = runtime.protect_sync({"a": "a@example.com"}, mode="dry-run")
    assert dry.payload == {"a": "a@example.com"}
    assert not dry.enforced


def test_profiles_are_resolved_and_recorded() -> None:
    runtime = create_runtime(
        {
            "policy": {
                "mode": "enforce",
                "profiles": {"research": {"actions": {"email": "mask"}}, "base": {}},
                "profileBinding": {"default": "base", "byScope": {"research": "research"}},
            }
        }
    )
    researcher = Identity("u1", "user", "sh", "ih", "bearer", ("research",), {"team": "x"})
    assert runtime.resolve_policy(researcher).profile == "research"
    result = runtime.protect_sync({"a": "minji.kim@example.com"}, identity=researcher)
    assert result.payload == {"a": "mi*****************om"}
    named = runtime.protect_sync({"a": "minji.kim@example.com"}, profile="base")
    assert named.payload == {"a": "[REDACTED:email]"}
    with pytest.raises(ConfigError):
        runtime.protect_sync({"a": "x"}, profile="nope")
    events = [json.loads(line) for line in Path(".haechi/audit.jsonl").read_text().splitlines()]
    assert [event["profile"] for event in events] == ["research", "base"]
    assert events[0]["identity"] == researcher.audit_projection()
    assert "team" not in json.dumps(events[0])


@pytest.mark.anyio
async def test_protect_text_and_ready() -> None:
    runtime = create_runtime({"mode": "enforce"})
    ok = await runtime.protect_text(
        "line a@example.com", direction="response", protocol="mcp-stdio", operation="stderr"
    )
    assert ok.text == "line [REDACTED:email]"
    assert not ok.blocked
    assert ok.summary["byType"] == {"email": 1}
    blocked = await runtime.protect_text(
        "key sk_live_abcdefghijklmnopqrstuvwx", direction="response", protocol="p", operation="o"
    )
    assert blocked.text is None
    assert blocked.blocked
    assert not Path(".haechi/audit.jsonl").exists()
    # Redacting, masking and blocking need no key: the keys are not looked at.
    assert await runtime.ready() == {"audit": True, "tokenVault": True}
    await runtime.aclose()


@pytest.mark.anyio
async def test_protect_sync_refuses_to_run_inside_an_event_loop() -> None:
    runtime = create_runtime()
    with pytest.raises(RuntimeError, match="await protect"):
        runtime.protect_sync({"a": "x"})


def _interrupt() -> None:
    raise KeyboardInterrupt


def test_an_interrupted_protect_sync_is_unwound_before_the_next_call() -> None:
    events: list[str] = []

    class StallingOnce(MemoryAuditStore):
        async def append(self, build: Any, *, committed: Any = None) -> dict[str, Any]:
            if not events:
                events.append("stalled")
                asyncio.get_running_loop().call_soon(_interrupt)  # Ctrl-C while suspended
                try:
                    await asyncio.Event().wait()
                except asyncio.CancelledError:
                    events.append("cancelled")
                    raise
            return await super().append(build, committed=committed)

    store = StallingOnce()
    runtime = create_runtime({"mode": "enforce"}, {"audit_store": store, "token_vault": None})
    with pytest.raises(KeyboardInterrupt):
        runtime.protect_sync({"a": "a@example.com"})
    assert events == ["stalled", "cancelled"]
    assert runtime.protect_sync({"a": "b@example.com"}).payload == {"a": "[REDACTED:email]"}
    assert events == ["stalled", "cancelled"]
    records = asyncio.run(_records(store))
    assert len(records) == 1
    runtime.close()


async def _records(store: MemoryAuditStore) -> list[dict[str, Any]]:
    return [record async for record in store.records()]


@pytest.mark.anyio
async def test_ready_reports_an_unwritable_audit_log() -> None:
    Path("blocker").write_text("a file where a directory should be")
    runtime = create_runtime({"audit": {"path": "blocker/audit.jsonl"}})
    assert (await runtime.ready())["audit"] is False


def test_scan_reports_findings_without_auditing() -> None:
    runtime = create_runtime({"filters": {"allowlist": ["help@example.com"]}})
    findings = runtime.scan({"to": ["help@example.com", "x a@example.com"]})
    assert [(f.type, f.path, f.start, f.end) for f in findings] == [("email", ("to", 1), 2, 15)]
    assert findings[0].action is None
    assert not Path(".haechi").exists()


def test_close_closes_the_audit_file_it_opened_but_not_a_handed_in_store(
    tmp_path: Path,
) -> None:
    from haechi.audit import FileAuditStore

    runtime = create_runtime({"policy": {"mode": "enforce"}})
    runtime.protect_sync({"note": "mail jane.doe@example.com"})
    built = runtime.audit.store
    assert isinstance(built, FileAuditStore)
    assert built._log._fd >= 0
    runtime.close()
    assert built._log._fd == -1

    handed = FileAuditStore(tmp_path / "own.jsonl")
    other = create_runtime({"policy": {"mode": "enforce"}}, {"audit_store": handed})
    other.protect_sync({"note": "mail jane.doe@example.com"})
    other.close()
    assert handed._log._fd >= 0  # the caller's to close


def test_close_leaves_a_handed_in_sink_and_crypto_provider_to_their_owner(tmp_path: Path) -> None:
    """Both were closed with the runtime when they had an ``aclose``, although the caller
    passed them in and may use them on."""
    closed: list[str] = []

    class OwnSink(AuditSink):
        async def aclose(self) -> None:
            closed.append("sink")

    class OwnCrypto(LocalCryptoProvider):
        async def aclose(self) -> None:
            closed.append("crypto")

    init_key_file(tmp_path / "keys.json")
    sink = OwnSink(MemoryAuditStore())
    crypto = OwnCrypto(tmp_path / "keys.json")
    runtime = create_runtime(
        {"policy": {"mode": "enforce"}}, {"audit_sink": sink, "crypto": crypto}
    )
    runtime.protect_sync({"note": "mail jane.doe@example.com"})
    runtime.close()
    assert closed == []


@pytest.mark.parametrize(
    ("config", "needs"),
    [
        ({}, False),
        ({"policy": {"actions": {"email": "mask", "phone": "block"}}}, False),
        ({"policy": {"actions": {"email": "tokenize"}}}, True),
        ({"policy": {"defaultAction": "encrypt"}}, True),
        (
            {
                "policy": {
                    "profiles": {"eng": {"actions": {"email": "encrypt"}}, "ops": {}},
                    "profileBinding": {"default": "ops", "byScope": {"eng": "eng"}},
                }
            },
            True,
        ),
        ({"auth": {"provider": "bearer"}}, True),
    ],
)
def test_a_runtime_needs_keys_when_a_call_can_use_one(
    tmp_path: Path, config: dict[str, Any], needs: bool
) -> None:
    """Only then is a missing key file an error at start and a reason not to be ready."""
    settings = {"keys": {"keyFile": str(tmp_path / "missing.json")}, **config}
    runtime = create_runtime(settings)
    assert runtime.needs_keys() is needs
    if needs:
        with pytest.raises(CryptoError, match=r"missing\.json not found"):
            runtime.require_keys()
    else:
        runtime.require_keys()
    assert ("keys" in asyncio.run(runtime.ready())) is needs
    runtime.close()
