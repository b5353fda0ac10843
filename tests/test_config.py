# SPDX-License-Identifier: Apache-2.0
"""Configuration: strict validation, defaults, environment overlay and the documented reference."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from haechi.config import (
    ENV_VARIABLES,
    MAX_CONFIG_BYTES,
    apply_env_overlay,
    config_reference,
    default_config,
    load_config,
    parse_config,
    reference_markdown,
)
from haechi.errors import ConfigError

DOCS = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"


def _plugin(settings: dict[str, object]) -> dict[str, object]:
    """A plugin auth section with ``settings`` added."""
    anchor = {"keyId": "k", "publicKey": "p"}
    plugin = {"manifestPath": "m.json", "trustAnchors": [anchor], **settings}
    return {"auth": {"provider": "plugin", "plugin": plugin}}


def test_plugin_hashes_in_any_case_are_accepted() -> None:
    upper = "AB" * 32
    parse_config(_plugin({"revoked": {"entrySha256": [upper]}, "pin": {"entrySha256": upper}}))


@pytest.mark.parametrize(
    ("document", "key"),
    [
        ({"bogus": 1}, "bogus: unknown key"),
        ({"proxy": {"bogus": 1}}, "proxy.bogus: unknown key"),
        ({"audit": {"anchor": {"everyRecord": 2}}}, "audit.anchor.everyRecord: unknown key"),
        ({"proxy": {"port": "1016"}}, "proxy.port"),
        ({"proxy": {"port": 70000}}, "proxy.port"),
        ({"configVersion": 2}, "configVersion: unsupported configVersion 2"),
        ({"target": {"type": "openai"}}, "target.type: unknown target type"),
        ({"mode": "weird"}, "mode"),
        ({"policy": {"actions": {"email": "nope"}}}, "policy.actions.email"),
        ({"limits": {"maxNestingDepth": 0}}, "limits.maxNestingDepth"),
        ({"filters": {"minConfidence": 1.5}}, "filters.minConfidence"),
        ({"filters": {"allowlist": [{}]}}, "filters.allowlist[0]"),
        ({"tokenVault": {"deterministicTypes": []}}, "tokenVault.deterministicTypes"),
        ({"tokenVault": {"retentionDays": 3_000_000}}, "tokenVault.retentionDays"),
        ({"target": {"upstream": "https://h:99999/v1"}}, "target.upstream: must name its port"),
        ({"target": {"upstream": "http://h:8x/"}}, "target.upstream: must name its port"),
        ({"target": {"upstream": "http://llm internal/"}}, "target.upstream: must not hold"),
        ({"tokenVault": {"retentionDays": float("inf")}}, "tokenVault.retentionDays"),
        ({"tokenVault": {"retentionDays": float("nan")}}, "tokenVault.retentionDays"),
        ({"mcp": {"allowedMethods": []}}, "mcp.allowedMethods"),
        ({"target": {"forwardHeaders": ["authorization"]}}, "target.forwardHeaders"),
        ({"target": {"forwardHeaders": ["X-Trace"]}}, "target.forwardHeaders"),
        ({"target": {"forwardHeaders": ["accept-encoding"]}}, "target.forwardHeaders"),
        ({"target": {"forwardHeaders": ["cookie"]}}, "target.forwardHeaders"),
        ({"target": {"forwardHeaders": "x-trace"}}, "target.forwardHeaders"),
        ({"target": {"forwardHeaders": [1]}}, "target.forwardHeaders"),
        ({"policy": {"profiles": {"a": {}}}}, "policy: profiles need a profileBinding"),
        (
            {"policy": {"profiles": {"a": {}}, "profileBinding": {"default": "b"}}},
            "unknown profile 'b'",
        ),
        ({"auth": {"provider": "plugin"}}, "auth: auth.provider plugin needs"),
        ({"proxy": {"tls": {"keyFile": "k.pem"}}}, "proxy.tls: keyFile and certFile go together"),
        ({"proxy": {"tls": {"certFile": "c.pem"}}}, "proxy.tls: keyFile and certFile go together"),
        ({"proxy": {"tls": {}}}, "proxy.tls: needs keyFile and certFile, or pfxFile"),
        ({"proxy": {"tls": []}}, "proxy.tls"),
        ({"proxy": {"tls": 5}}, "proxy.tls"),
        (
            {"proxy": {"tls": {"pfxFile": "a.p12", "keyFile": "k.pem", "certFile": "c.pem"}}},
            "proxy.tls: use either keyFile/certFile or pfxFile, not both",
        ),
        ({"proxy": {"tls": {"keyFile": " ", "certFile": "c.pem"}}}, "proxy.tls.keyFile"),
        ({"proxy": {"port": -1}}, "proxy.port"),
        ({"proxy": {"port": 1.5}}, "proxy.port"),
        ({"proxy": {"port": 211016}}, "proxy.port"),
        ({"privacy": {"profile": "mars"}}, "privacy.profile"),
        (_plugin({"revoked": {"entrySha256": ["sha256:" + "a" * 64]}}), "revoked.entrySha256[0]"),
        (_plugin({"revoked": {"entrySha256": ["a" * 63]}}), "revoked.entrySha256[0]"),
        (_plugin({"pin": {"entrySha256": "a" * 64 + " "}}), "pin.entrySha256"),
        (_plugin({"pin": {"manifestSha256": "g" * 64}}), "pin.manifestSha256"),
        (
            _plugin({"trustAnchors": [{"keyId": "k", "publicKey": p} for p in ("p1", "p2")]}),
            "auth.plugin.trustAnchors: keyId 'k' is listed more than once",
        ),
    ],
)
def test_invalid_documents_name_the_key(document: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(document)
    assert key in str(info.value)


@pytest.mark.parametrize("name", ["id", "type"])
def test_a_custom_rule_id_or_type_has_at_most_64_characters(name: str) -> None:
    """Every audit entry of a rule's findings repeats its id and type (a 20,000-character id
    made a record of 1000 matches 20 MB): a longer one is refused, without being quoted."""
    rule = {"id": "r", "type": "t", "pattern": "x"}
    parse_config({"filters": {"customRules": [{**rule, name: "r" * 64}]}})
    with pytest.raises(ConfigError) as info:
        parse_config({"filters": {"customRules": [{**rule, name: "r" * 65}]}})
    message = f"filters.customRules[0].{name}: String should have at most 64 characters"
    assert str(info.value) == f"config: {message}"


def test_defaults_match_the_reference_shape() -> None:
    settings = default_config()
    assert settings.effective_mode == "dry-run"
    assert settings.proxy.port == 11016
    assert settings.policy.presets == ["korean-pii", "secrets-only", "llm-redact"]
    assert settings.policy.actions == {"card": "block"}
    assert settings.streaming.max_match_bytes == 256
    assert settings.limits.max_nesting_depth == 256
    assert settings.target.adapter_id == "openai-compatible"
    # What init writes reads back to the same configuration.
    assert parse_config(settings.to_json_dict()) == settings


@pytest.mark.parametrize(
    ("limits", "request_ms", "headers_ms"),
    [
        ({}, 300000, 60000),
        ({"requestTimeoutMs": None, "headersTimeoutMs": None}, 300000, 60000),
        ({"requestTimeoutMs": 0, "headersTimeoutMs": 0}, 0, 0),
        ({"requestTimeoutMs": 250, "headersTimeoutMs": 125}, 250, 125),
    ],
)
def test_null_client_timeouts_are_nodes_defaults_and_zero_turns_them_off(
    limits: dict[str, object], request_ms: int, headers_ms: int
) -> None:
    settings = parse_config({"limits": limits}).limits
    assert (settings.request_timeout_ms, settings.headers_timeout_ms) == (request_ms, headers_ms)


def test_user_actions_merge_over_card_block() -> None:
    settings = parse_config({"policy": {"actions": {"email": "tokenize"}}})
    assert settings.policy.actions == {"card": "block", "email": "tokenize"}
    override = parse_config({"policy": {"actions": {"card": "redact"}}})
    assert override.policy.actions == {"card": "redact"}


def test_target_type_names_the_adapter() -> None:
    assert parse_config({"target": {"type": "ollama"}}).target.adapter_id == "ollama"
    llm = parse_config({"target": {"type": "llm-http", "adapter": "anthropic"}})
    assert llm.target.adapter_id == "anthropic"


def test_env_mode_really_changes_the_effective_mode() -> None:
    document = {"mode": "dry-run", "policy": {"mode": "report-only"}}
    settings = parse_config(apply_env_overlay(document, {"HAECHI_MODE": "enforce"}))
    assert settings.effective_mode == "enforce"
    assert document["policy"] == {"mode": "report-only"}  # the file document is not mutated


def test_env_overlay_values() -> None:
    env = {
        "HAECHI_PROXY_PORT": "8080",
        "HAECHI_PROXY_HOST": "localhost",
        "HAECHI_UPSTREAM": "http://127.0.0.1:8000/prefix",
        "HAECHI_LOG_FORMAT": "json",
    }
    settings = parse_config(apply_env_overlay({}, env))
    assert (settings.proxy.port, settings.proxy.host) == (8080, "localhost")
    assert settings.target.upstream == "http://127.0.0.1:8000/prefix"
    assert settings.logging.format == "json"
    assert set(ENV_VARIABLES) == {
        "HAECHI_PROXY_PORT",
        "HAECHI_PROXY_HOST",
        "HAECHI_UPSTREAM",
        "HAECHI_MODE",
        "HAECHI_LOG_FORMAT",
    }


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("HAECHI_PROXY_PORT", "80a"),
        ("HAECHI_PROXY_PORT", "65536"),
        ("HAECHI_PROXY_HOST", "  "),
        ("HAECHI_UPSTREAM", "not a url"),
        ("HAECHI_MODE", "enforcing"),
        ("HAECHI_LOG_FORMAT", "xml"),
    ],
)
def test_bad_env_value_names_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        apply_env_overlay({}, {name: value})


def test_load_config_file_and_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert load_config(env={}) == default_config()  # no file: defaults
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "missing.json", env={})
    path = tmp_path / "custom.json"
    path.write_text(json.dumps({"policy": {"mode": "enforce"}}), encoding="utf-8")
    assert load_config(path, env={}).effective_mode == "enforce"
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(ConfigError, match="invalid JSON at line 1"):
        load_config(path, env={})
    path.write_text("[]", encoding="utf-8")
    with pytest.raises(ConfigError, match="must be a JSON object"):
        load_config(path, env={})


@pytest.mark.parametrize(
    "text",
    [
        '{"policy": {"mode": "enforce", "mode": "dry-run"}}',
        '{"policy": {"mode": "enforce"}, "policy": {"mode": "dry-run"}}',
        '{"auth": {"plugin": {"trustAnchors": {"k": "p1", "k": "p2"}}}}',
    ],
)
def test_a_key_given_twice_in_one_object_is_refused(tmp_path: Path, text: str) -> None:
    """A JSON reader keeps the last value: a file that gives a key twice would lose the
    first without a word (enforce turned into dry-run, another trust anchor)."""
    path = tmp_path / "haechi.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match="is given twice in one object"):
        load_config(path, env={})


@pytest.mark.parametrize("number", ["Infinity", "1e999"])
@pytest.mark.parametrize("where", ["policy", "policy.profiles.big"])
def test_an_infinite_rate_is_refused(tmp_path: Path, number: str, where: str) -> None:
    """Python's JSON reader takes ``Infinity`` and reads ``1e999`` as it: a budget that no
    count reaches would lift the limit without a word."""
    rate = f'"rate": {{"requestsPerMinute": {number}}}'
    policy = (
        f"{{{rate}}}"
        if where == "policy"
        else f'{{"profiles": {{"big": {{{rate}}}}}, "profileBinding": {{"default": "big"}}}}'
    )
    path = tmp_path / "haechi.json"
    path.write_text(f'{{"policy": {policy}}}', encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"{where}\.rate\.requestsPerMinute: .*finite"):
        load_config(path, env={})


def test_tls_passphrase_is_secret() -> None:
    settings = parse_config(
        {"proxy": {"tls": {"pfxFile": "a.p12", "passphrase": "hunter2hunter2"}}}
    )
    assert "hunter2hunter2" not in repr(settings)
    assert "hunter2hunter2" not in json.dumps(settings.to_json_dict())


def test_every_key_is_documented_and_described() -> None:
    keys = config_reference()
    assert len(keys) > 100
    assert all(key.description for key in keys), [k.key for k in keys if not k.description]
    text = DOCS.read_text(encoding="utf-8")
    begin, end = "<!-- BEGIN KEY REFERENCE -->\n", "<!-- END KEY REFERENCE -->"
    documented = text[text.index(begin) + len(begin) : text.index(end)]
    assert documented == reference_markdown(), "regenerate with: haechi config --format markdown"
    for key in keys:
        assert f"`{key.key}`" in documented


@pytest.mark.parametrize(
    ("write", "message"),
    [
        (lambda path: path.write_text('{"a": ' + "[" * 100_000 + "]" * 100_000 + "}"), "deeply"),
        (lambda path: path.write_text('{"a": ' + "1" * 5000 + "}"), "too long"),
        (lambda path: path.write_bytes(b" " * (MAX_CONFIG_BYTES + 1)), "larger than"),
    ],
    ids=["deep", "long-number", "huge"],
)
def test_a_configuration_that_cannot_be_read_is_a_configuration_error(
    tmp_path: Path, write: Callable[[Path], object], message: str
) -> None:
    path = tmp_path / "haechi.config.json"
    write(path)
    with pytest.raises(ConfigError, match=message):
        load_config(path, env={})


def test_a_device_is_not_read_as_a_configuration() -> None:
    with pytest.raises(ConfigError, match="not a regular file"):
        load_config("/dev/zero", env={})
