# SPDX-License-Identifier: Apache-2.0
"""``haechi.config.json``: the models, the loader and the environment overlay.

The file shape is the reference system's (``configVersion: 1``, camelCase keys), so an
existing configuration keeps working. Where the reference was lenient we are strict: an
unknown key anywhere, a wrong type, an unknown ``target.type`` or a newer ``configVersion``
is a :class:`~haechi.errors.ConfigError` whose message names the key path.

Precedence, lowest to highest: built-in defaults, the file, the environment overlay
(``HAECHI_PROXY_PORT``, ``HAECHI_PROXY_HOST``, ``HAECHI_UPSTREAM``, ``HAECHI_MODE``,
``HAECHI_LOG_FORMAT``), then command-line flags where a command offers them. No secret and
no security toggle can be set from the environment.

Relative paths are relative to the working directory of the process.
"""

from __future__ import annotations

import codecs
import json
import os
import stat
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Final, Literal, Union, get_args, get_origin
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StrictBool,
    StrictInt,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic.fields import FieldInfo

from haechi._json_once import RepeatedKey, members_once
from haechi.errors import ConfigError
from haechi.models import (
    DEFAULT_RULE_CONFIDENCE,
    MAX_RULE_NAME_LENGTH,
    MAX_RULE_PATTERN_LENGTH,
    Action,
    Mode,
)

__all__ = [
    "CONFIG_VERSION",
    "DEFAULT_CONFIG_PATH",
    "DEFAULT_HEADERS_TIMEOUT_MS",
    "DEFAULT_REQUEST_TIMEOUT_MS",
    "DEFAULT_WRITE_TIMEOUT_MS",
    "ENV_VARIABLES",
    "KNOWN_ADAPTERS",
    "KNOWN_TARGET_TYPES",
    "MAX_CONFIG_BYTES",
    "MAX_MILLISECONDS",
    "PRIVACY_PROFILE_IDS",
    "ConfigKey",
    "HaechiConfig",
    "apply_env_overlay",
    "config_reference",
    "default_config",
    "load_config",
    "parse_config",
    "reference_markdown",
]

CONFIG_VERSION: Final = 1
DEFAULT_CONFIG_PATH: Final = "haechi.config.json"
#: Largest configuration file read (16 MiB; a configuration is a few kilobytes).
MAX_CONFIG_BYTES: Final = 16 * 1024 * 1024
#: What ``null`` means for ``limits.headersTimeoutMs`` and ``limits.requestTimeoutMs``: the
#: defaults of Node's HTTP server, which the reference system runs on. The server here has
#: no header timeout of its own, so "server default" must be a number, not "none".
DEFAULT_HEADERS_TIMEOUT_MS: Final = 60000
DEFAULT_REQUEST_TIMEOUT_MS: Final = 300000
#: What ``null`` means for ``limits.writeTimeoutMs``. The clock runs only while the gateway
#: cannot write (its send buffer is full) and restarts whenever writing can resume, which
#: the client brings about by taking at most about a third of that buffer (Linux grows it
#: to 4 MiB): a reader taking a few tens of KiB per second is never cut, while one that
#: takes nothing cannot hold its connection, its in-flight slot and an upstream request
#: longer than a minute. "No limit" is never the default: the server has no write deadline
#: of its own.
DEFAULT_WRITE_TIMEOUT_MS: Final = 60000

#: Protocol adapters the gateway knows, in the order ``haechi status`` lists them.
KNOWN_ADAPTERS: Final = (
    "openai-compatible",
    "vllm-openai",
    "llama-cpp",
    "ollama",
    "anthropic",
    "gemini",
    "mcp-http",
)
#: Accepted ``target.type`` values: every adapter plus the reference alias ``llm-http``.
KNOWN_TARGET_TYPES: Final = ("llm-http", *KNOWN_ADAPTERS)
PRIVACY_PROFILE_IDS: Final = ("kr-pipa", "eu-gdpr", "asia-pdpa", "us-general", "jp-appi")
PLUGIN_CAPABILITIES: Final = (
    "readsPlaintext",
    "writesPlaintext",
    "networkEgress",
    "fileWrite",
    "auditWrite",
    "externalSecrets",
    "readsCredentials",
)
#: Request headers ``target.forwardHeaders`` may not name. The gateway never forwards any of
#: them but ``authorization``, which it forwards only with ``auth.provider: "none"``.
ALWAYS_DROPPED_HEADERS: Final = frozenset(
    {
        "host",
        "content-length",
        "content-type",
        "accept-encoding",  # the gateway asks for an identity body it can inspect
        "authorization",
        "cookie",
        "set-cookie",
        "proxy-authorization",
        "proxy-authenticate",
        "proxy-connection",
        "connection",
        "keep-alive",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)

PositiveInt = Annotated[StrictInt, Field(ge=1)]
NonNegativeInt = Annotated[StrictInt, Field(ge=0)]
#: The longest time a setting names, in milliseconds: 2**31 - 1 (about 24.8 days, as long as
#: a JavaScript timer waits). Past what the event loop's and the threads' clocks hold, a
#: larger number would be accepted here and then fail when the gateway starts, or silently
#: stop the thread that fsyncs the audit file.
MAX_MILLISECONDS: Final = 2**31 - 1
Milliseconds = Annotated[StrictInt, Field(ge=0, le=MAX_MILLISECONDS)]
PositiveMilliseconds = Annotated[StrictInt, Field(ge=1, le=MAX_MILLISECONDS)]
#: Most refusals a process audits one record each per second (a denial budget).
RecordsPerSecond = Annotated[StrictInt, Field(ge=0, le=1_000_000)]
NonBlank = Annotated[str, Field(min_length=1, pattern=r"\S")]
#: A custom rule's id or type (see :data:`~haechi.models.MAX_RULE_NAME_LENGTH`).
RuleName = Annotated[str, Field(min_length=1, max_length=MAX_RULE_NAME_LENGTH, pattern=r"\S")]
#: A SHA-256 written as 64 hex digits (any case): a mistyped hash in a revocation list would
#: otherwise revoke nothing, silently.
Sha256Hex = Annotated[str, Field(pattern=r"^[0-9a-fA-F]{64}$")]


class _Section(BaseModel):
    """Base of every section: camelCase keys, unknown keys refused, immutable."""

    model_config = ConfigDict(
        extra="forbid",
        alias_generator=to_camel,
        validate_by_alias=True,
        validate_by_name=False,
        serialize_by_alias=True,
        frozen=True,
        strict=False,
    )


def _field(default: Any, description: str, **kwargs: Any) -> Any:
    return Field(default, description=description, **kwargs)


# --- target, proxy ---------------------------------------------------------------------


class TargetConfig(_Section):
    """The upstream haechi protects traffic to."""

    type: str = _field(
        "llm-http",
        "Upstream protocol: llm-http (alias of openai-compatible), openai-compatible, "
        "vllm-openai, llama-cpp, ollama, anthropic, gemini or mcp-http.",
    )
    adapter: str = _field(
        "openai-compatible",
        "Protocol adapter used when type is llm-http; a type that names an adapter wins.",
    )
    upstream: str = _field(
        "http://127.0.0.1:9999", "Base URL of the upstream; its path prefix is kept."
    )
    forward_headers: list[NonBlank] | None = _field(
        None,
        "Extra lowercase request header names forwarded upstream (the security-relevant "
        "ones such as authorization and cookie can never be added).",
    )
    token_id_input: Literal["refuse", "relay"] = _field(
        "refuse",
        "A request whose prompt or input is token ids or embeddings (which detection cannot"
        " read): refuse it (403) or relay it uninspected.",
    )

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        if value not in KNOWN_TARGET_TYPES:
            raise ValueError(
                f"unknown target type {value!r}; known: {', '.join(KNOWN_TARGET_TYPES)}"
            )
        return value

    @field_validator("adapter")
    @classmethod
    def _known_adapter(cls, value: str) -> str:
        if value not in KNOWN_ADAPTERS:
            raise ValueError(
                f"unknown protocol adapter {value!r}; known: {', '.join(KNOWN_ADAPTERS)}"
            )
        return value

    @field_validator("upstream")
    @classmethod
    def _url(cls, value: str) -> str:
        return _validate_url(value)

    @field_validator("forward_headers")
    @classmethod
    def _headers(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        seen: list[str] = []
        for raw in value:
            name = raw.strip()
            if name != name.lower():
                raise ValueError(f"header name {raw!r} must be lowercase")
            if name in ALWAYS_DROPPED_HEADERS:
                raise ValueError(f"header {name!r} is never forwarded")
            if name not in seen:
                seen.append(name)
        return seen

    @property
    def adapter_id(self) -> str:
        """The protocol adapter in effect."""
        return self.adapter if self.type == "llm-http" else self.type


def _validate_url(value: str) -> str:
    parts = urlsplit(value.strip())
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host")
    if any(char.isspace() or not char.isprintable() for char in parts.netloc):
        raise ValueError("must not hold spaces or control characters in its host")
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0 or (port is None and parts.netloc.endswith(":")):
        raise ValueError("must name its port, if any, as a number from 1 to 65535")
    return value.strip()


class TlsConfig(_Section):
    """TLS material for the gateway listener: either a key/cert pair or a PKCS#12 file."""

    key_file: NonBlank | None = _field(None, "PEM private key file.")
    cert_file: NonBlank | None = _field(None, "PEM certificate chain file.")
    pfx_file: NonBlank | None = _field(None, "PKCS#12 file holding key and certificate.")
    passphrase: SecretStr | None = _field(None, "Passphrase of the PKCS#12 file, if any.")

    @model_validator(mode="after")
    def _one_form(self) -> TlsConfig:
        pair = self.key_file is not None or self.cert_file is not None
        pfx = self.pfx_file is not None
        if pair and pfx:
            raise ValueError("use either keyFile/certFile or pfxFile, not both")
        if not pair and not pfx:
            raise ValueError("needs keyFile and certFile, or pfxFile")
        if pair and (self.key_file is None or self.cert_file is None):
            raise ValueError("keyFile and certFile go together")
        if self.passphrase is not None and not pfx:
            raise ValueError("passphrase applies to pfxFile only")
        return self


class ProxyConfig(_Section):
    """The gateway listener."""

    host: NonBlank = _field("127.0.0.1", "Listen address; non-loopback needs --allow-remote-bind.")
    port: Annotated[StrictInt, Field(ge=0, le=65535)] = _field(11016, "Listen port (0 = any free).")
    workers: Annotated[StrictInt, Field(ge=1, le=64)] = _field(
        1,
        "Gateway processes serving the listening port; rate limits and maxInFlight apply "
        "per process.",
    )
    tls: TlsConfig | None = _field(None, "TLS material; when set the gateway serves HTTPS.")
    trust_forwarded_proto: StrictBool = _field(
        False,
        "Behind a TLS-terminating proxy: require X-Forwarded-Proto: https on every request.",
    )


# --- protection ------------------------------------------------------------------------


class ResponseProtectionConfig(_Section):
    """Inspection of upstream responses."""

    enabled: StrictBool = _field(False, "Inspect non-streamed upstream responses.")
    mode: Mode = _field("enforce", "Mode applied to responses.")
    failure_mode: Literal["fail-closed", "allow"] = _field(
        "fail-closed",
        "What to do with a response that cannot be inspected (compressed, non-JSON, invalid).",
    )
    allow_non_json: StrictBool = _field(
        False,
        "Pass non-JSON responses through uninspected (audited) instead of failing; a body "
        "that parses as JSON whatever its type, and the body of a successful answer to a "
        "streaming request or declared as a stream (SSE, NDJSON, JSON Lines), are refused "
        "all the same (clients read them as data).",
    )
    allow_compressed: StrictBool = _field(
        False, "Accept compressed upstream responses (they are decompressed, then inspected)."
    )
    max_bytes: PositiveInt = _field(1048576, "Largest response body inspected, in bytes.")
    scan_numbers: StrictBool = _field(False, "Also scan number leaves of responses.")


class StreamingConfig(_Section):
    """Streamed requests and responses (SSE, NDJSON)."""

    request_mode: Literal["block", "pass-through", "inspect"] = _field(
        "block",
        "block: refuse streaming requests (501); inspect: protect the stream frame by frame; "
        "pass-through: forward uninspected (audited).",
    )
    response_mode: Mode = _field("enforce", "Mode applied to inspected streams.")
    max_match_bytes: PositiveInt = _field(
        256, "Size of the cross-frame window, in characters, that catches split values."
    )


class LimitsConfig(_Section):
    """Bounds on requests and on the process."""

    max_request_bytes: PositiveInt = _field(
        1048576,
        "Largest request body, in bytes (413); also the largest input of `haechi protect` "
        "and the longest line of `haechi scan` (exit 1).",
    )
    max_nesting_depth: PositiveInt = _field(256, "Deepest JSON nesting accepted (413).")
    max_header_bytes: PositiveInt = _field(
        65536,
        "Largest request head (the request line and header fields, as sent), in bytes "
        "(431, then the connection is closed); the trailer fields of a chunked body count "
        "towards the body's bound instead.",
    )
    max_inspection_ms: Milliseconds = _field(
        0,
        "CPU time one payload's inspection may take, in milliseconds, counted on the thread "
        "that scans; past it the payload is blocked and audited (413 "
        "haechi_inspection_budget_exceeded on a request); 0 = no limit.",
    )
    upstream_timeout_ms: PositiveMilliseconds = _field(
        120000, "Upstream timeout in milliseconds (504)."
    )
    max_in_flight: NonNegativeInt = _field(
        0, "Concurrent requests before answering 503 with Retry-After; 0 = unlimited."
    )
    shutdown_grace_ms: Milliseconds = _field(
        10000, "How long a graceful shutdown waits for in-flight requests."
    )
    request_timeout_ms: Milliseconds | None = _field(
        DEFAULT_REQUEST_TIMEOUT_MS,
        "Time allowed to receive a request body once its headers are in, in milliseconds "
        "(408); null = 300000, 0 = no limit.",
    )
    headers_timeout_ms: Milliseconds | None = _field(
        DEFAULT_HEADERS_TIMEOUT_MS,
        "Time allowed to receive request headers, in milliseconds (then the connection is "
        "closed); null = 60000, 0 = no limit.",
    )
    write_timeout_ms: Milliseconds | None = _field(
        DEFAULT_WRITE_TIMEOUT_MS,
        "How long a connection's writes may stay blocked on a client that reads nothing, in "
        "milliseconds (then the connection is cut, which releases its in-flight slot and "
        "cancels the upstream request); null = 60000, 0 = no limit.",
    )

    @field_validator("request_timeout_ms", "headers_timeout_ms", "write_timeout_ms", mode="before")
    @classmethod
    def _null_is_the_default(cls, value: Any, info: ValidationInfo) -> Any:
        # Resolved here, once, so that every reader of the setting gets the number in force:
        # a null read as "no limit" would let a client that never finishes its request, or
        # never reads its answer, hold a connection (and an in-flight slot) forever.
        if value is None:
            return cls.model_fields[info.field_name or ""].default
        return value


class RateConfig(_Section):
    """A per-identity request budget."""

    requests_per_minute: Annotated[float, Field(ge=1, allow_inf_nan=False)] = Field(
        description="Requests per minute allowed for one identity (anonymous callers share "
        "one); a finite number, at least 1."
    )


class ProfileConfig(_Section):
    """A named policy profile: overrides applied on top of the base policy (only stronger)."""

    presets: list[NonBlank] | None = _field(None, "Presets replacing the base presets.")
    default_action: Action | None = _field(None, "Default action of this profile.")
    actions: dict[str, Action] | None = _field(None, "Per-type actions merged over the base.")
    model_allowlist: list[NonBlank] | None = _field(None, "Models this profile may call.")
    rate: RateConfig | None = _field(None, "Request budget of this profile.")
    allow_unsafe_overrides: StrictBool | None = _field(
        None, "Keep weaker explicit actions from raising (the stronger action still applies)."
    )


class ProfileBindingConfig(_Section):
    """How an identity chooses a named profile: first scope, then label, then default."""

    default: NonBlank = Field(description="Profile of callers no scope or label maps.")
    by_scope: dict[str, NonBlank] = _field({}, "Scope -> profile name.")
    by_label: dict[str, NonBlank] = _field({}, "'key=value' label -> profile name.")


class PolicyConfig(_Section):
    """What happens to each detection type."""

    mode: Mode | None = _field(
        None, "Enforcement mode; null = the top-level mode (HAECHI_MODE sets both)."
    )
    presets: list[NonBlank] = _field(
        ["korean-pii", "secrets-only", "llm-redact"], "Policy presets applied in order."
    )
    default_action: Action = _field("redact", "Action for types no preset or entry names.")
    actions: dict[str, Action] = _field(
        {"card": "block"}, "Per-type actions; merged over the default card: block."
    )
    allow_unsafe_overrides: StrictBool = _field(
        False, "Do not raise when an explicit action is weaker than a preset's (it is ignored)."
    )
    custom_rules: list[dict[str, Any]] = _field(
        [], "Reserved for policy-side rule metadata; detection rules live in filters.customRules."
    )
    model_allowlist: list[NonBlank] | None = _field(None, "Models callers may request.")
    rate: RateConfig | None = _field(None, "Per-identity request budget.")
    profiles: dict[str, ProfileConfig] | None = _field(None, "Named profiles.")
    profile_binding: ProfileBindingConfig | None = _field(
        None, "Which identities get which named profile (required with profiles)."
    )

    @field_validator("actions", mode="before")
    @classmethod
    def _merge_card_block(cls, value: Any) -> Any:
        # The reference merges user actions over {card: block}; keep that default unless the
        # user names card explicitly.
        if isinstance(value, dict):
            return {"card": "block", **value}
        return value

    @model_validator(mode="after")
    def _binding_required(self) -> PolicyConfig:
        names = set(self.profiles or {})
        binding = self.profile_binding
        if self.profiles and binding is None:
            raise ValueError("profiles need a profileBinding with a default")
        if binding is not None:
            targets = [binding.default, *binding.by_scope.values(), *binding.by_label.values()]
            for target in targets:
                if target not in names:
                    raise ValueError(f"profileBinding names unknown profile {target!r}")
            for label in binding.by_label:
                if "=" not in label:
                    raise ValueError(f"byLabel key {label!r} must look like key=value")
        return self


class CustomRuleConfig(_Section):
    """A detection rule written by the operator."""

    id: RuleName = Field(description="Rule id reported in findings (at most 64 characters).")
    type: RuleName = Field(
        description="Detection type (a lowercase identifier, at most 64 characters)."
    )
    pattern: Annotated[str, Field(min_length=1, max_length=MAX_RULE_PATTERN_LENGTH)] = Field(
        description="Regular expression (at most 500 characters; match time is bounded)."
    )
    flags: Annotated[str, Field(pattern=r"^[dgimsuvy]*$")] = _field(
        "g", "Regex flags in the reference's letters (i, m, s, u are honoured)."
    )
    confidence: Annotated[float, Field(ge=0, le=1)] = _field(
        DEFAULT_RULE_CONFIDENCE, "Confidence of a match."
    )

    @field_validator("type")
    @classmethod
    def _identifier(cls, value: str) -> str:
        if (
            not value.replace("_", "a").isalnum()
            or not value[0].isalpha()
            or value != value.lower()
        ):
            raise ValueError("must be a lowercase identifier (letters, digits, underscores)")
        return value

    @field_validator("pattern")
    @classmethod
    def _screened(cls, value: str) -> str:
        # The detector's own screen, at load time: a catastrophic or broken pattern is
        # reported with its location instead of when the runtime is built. Imported here:
        # the detection package loads the whole catalogue, which plain config reads skip.
        from haechi.detect.custom import screen_pattern

        screen_pattern(value)
        return value


class AllowlistEntryConfig(_Section):
    """An allowlist entry matching a value, a hashed path, or both."""

    value: NonBlank | None = _field(None, "Exact matched value to suppress.")
    path: NonBlank | None = _field(None, "Exact hashed path (as in the audit log) to suppress.")

    @model_validator(mode="after")
    def _one_of(self) -> AllowlistEntryConfig:
        if self.value is None and self.path is None:
            raise ValueError("an allowlist entry needs value or path")
        return self


class FiltersConfig(_Section):
    """Detection precision dials and custom rules."""

    custom_rules: list[CustomRuleConfig] = _field([], "Operator-written detection rules.")
    min_confidence: Annotated[float, Field(ge=0, le=1)] = _field(
        0, "Drop findings below this confidence (never hard-block types)."
    )
    allowlist: list[NonBlank | AllowlistEntryConfig] = _field(
        [], "Values or hashed paths never reported (never hard-block types)."
    )
    decode_and_rescan: StrictBool = _field(
        False, "Also decode base64, base64url and percent-encoded leaves and scan them."
    )
    scan_text_attachments: StrictBool = _field(
        True,
        "Decode attachments declared as text (base64 data beside a text media type, text"
        " data URLs) and base64 file fields holding text (OpenAI file_data, Ollama images,"
        " Bedrock Converse source.bytes, an MCP resource blob with no mimeType), protect them"
        " with every rule and encode them back;"
        " one that does not decode as declared, or such a field that is not base64, blocks.",
    )
    binary_attachments: Literal["forward", "block"] = _field(
        "forward",
        "Binary attachments, which detection cannot read (data beside a media type or a data"
        " URL declaring a type that is not text, such as images, audio and PDF; OpenAI"
        " input_audio; a base64 file field whose bytes are not text): forward them as sent,"
        " or block the request or answer holding one (uninspectable_attachment). block"
        " needs scanTextAttachments.",
    )

    @model_validator(mode="after")
    def _located(self) -> FiltersConfig:
        # Attachments are only located while scanTextAttachments is on: blocking binary
        # ones without it would block nothing.
        if self.binary_attachments == "block" and not self.scan_text_attachments:
            raise ValueError("binaryAttachments: block needs scanTextAttachments: true")
        return self


# --- keys, audit, vault ------------------------------------------------------------------


class KeysConfig(_Section):
    """Where encryption keys come from."""

    provider: NonBlank = _field(
        "local", "Crypto provider name: local (key file), external (injected), or a plugin's."
    )
    key_file: NonBlank = _field(".haechi/dev.keys.json", "Key file of the local provider.")


class AnchorConfig(_Section):
    """Anchoring of the audit chain head, so tail truncation is detectable."""

    mode: Literal["none", "file", "stdout"] = _field("none", "Where anchors are written.")
    path: NonBlank = _field(".haechi/audit.anchor.jsonl", "Anchor file for mode file.")
    every_records: PositiveInt = _field(1, "Write an anchor every N records.")


class AuditConfig(_Section):
    """The hash-chained audit log."""

    sink: NonBlank = _field("jsonl", "Audit store name: jsonl (file), memory, or a plugin's.")
    path: NonBlank = _field(".haechi/audit.jsonl", "Audit file of the jsonl store.")
    fsync_interval_ms: Milliseconds = _field(
        200,
        "jsonl store: an append returns once its record is written, and the file is fsynced"
        " within this many ms (a machine crash can lose that window, a gateway crash nothing);"
        " 0 = an append returns only after the fsync covering its record.",
    )
    max_detections_per_record: Annotated[StrictInt, Field(ge=0, le=10000)] = _field(
        1000,
        "Detections one protect record lists, at most 10000 (their paths hold at most 256 KiB"
        " together); the summary counts every finding, and detectionsOmitted how many the list"
        " leaves out. 0 = counts only.",
    )
    anchor: AnchorConfig = _field(AnchorConfig(), "Chain anchoring.")


class TokenVaultConfig(_Section):
    """Reversible tokenization."""

    provider: NonBlank = _field("local", "Token store name: local (file), memory, or a plugin's.")
    path: NonBlank = _field(".haechi/token-vault.json", "Vault file of the local store.")
    reveal_policy: Literal["disabled", "local-dev"] = _field(
        "disabled", "Whether token-reveal may return plaintext (local-dev only)."
    )
    retention_days: Annotated[StrictInt | float, Field(ge=1, le=1_000_000, allow_inf_nan=False)] = (
        _field(30, "Days a token stays redeemable (at most 1000000).")
    )
    deterministic: StrictBool = _field(
        False, "Same value -> same token (linkable) for the types in deterministicTypes."
    )
    deterministic_types: list[NonBlank] | None = _field(
        None, "Types tokenized deterministically; null = all types when deterministic."
    )
    detokenize_responses: StrictBool = _field(
        False, "Restore this request's tokens in its response (needs response protection)."
    )
    max_tokens_per_payload: NonNegativeInt = _field(
        1000,
        "Values one payload (a request, an answer, a stream, an MCP message) may have "
        "tokenized; more is refused before any is stored (413 for a request). 0 = no limit.",
    )

    @field_validator("deterministic_types")
    @classmethod
    def _non_empty(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and not value:
            raise ValueError("must be null or a non-empty list")
        return value


class PrivacyConfig(_Section):
    """A regional privacy profile that can only strengthen actions."""

    profile: Literal["kr-pipa", "eu-gdpr", "asia-pdpa", "us-general", "jp-appi"] | None = _field(
        None, "Privacy profile id, or null."
    )


class LoggingConfig(_Section):
    """Operational logs (never payloads, headers or tokens)."""

    format: Literal["text", "json"] = _field("text", "text or json lines.")


class MetricsConfig(_Section):
    """Prometheus metrics on /__haechi/metrics."""

    enabled: StrictBool = _field(True, "Serve metrics.")
    provider: NonBlank = _field("prometheus", "Metrics sink name.")


class RateLimitConfig(_Section):
    """Where rate-limit budgets are counted, how long the gateway waits for them, and how many
    refusals are audited one by one."""

    provider: NonBlank = _field("memory", "Rate limiter name: memory (per process) or a plugin's.")
    denied_records_per_second: RecordsPerSecond = _field(
        20,
        "Requests refused 429 `haechi_rate_limited` that a gateway process audits one record "
        "each, per second (a burst of as many); past it refusals are counted, and one record "
        "a second says how many, by reason. A budget of its own, apart from "
        "`auth.deniedRecordsPerSecond`: a caller over its limit cannot crowd out the records "
        "of credential denials. 0 = one record per refusal, however many. Requests refused "
        "503 `haechi_rate_limit_unavailable` are bounded by as many records a second, in a "
        "budget of their own.",
    )
    timeout_ms: Annotated[StrictInt, Field(ge=0, le=60_000)] = _field(
        1000,
        "Time limit in milliseconds of each call to the limiter (`allow`, `retry_after`). "
        "An `allow` that does not answer within it, or raises, refuses the request 503 "
        "`haechi_rate_limit_unavailable`; a `retry_after` that does not gets the whole "
        "window. 0 = no limit; at most 60000, the window a budget is counted in.",
    )


class PluginPinConfig(_Section):
    """Exact plugin build the operator accepts."""

    version: NonBlank | None = _field(None, "Required plugin version.")
    entry_sha256: Sha256Hex | None = _field(
        None, "Required SHA-256 of the entry file (64 hex digits)."
    )
    manifest_sha256: Sha256Hex | None = _field(
        None, "Required SHA-256 of the signed manifest (64 hex digits)."
    )


class PluginRevokedConfig(_Section):
    """Signers and builds that must never load."""

    signer_key_ids: list[NonBlank] = _field([], "Revoked signer key ids.")
    entry_sha256: list[Sha256Hex] = _field([], "Revoked entry file SHA-256 hashes (64 hex digits).")


class PluginResourceLimitsConfig(_Section):
    """Resource limits of the plugin child process."""

    max_memory_mb: PositiveInt = _field(256, "Address-space limit in MiB.")
    cpu_seconds: PositiveInt = _field(10, "CPU time limit in seconds.")
    max_open_files: PositiveInt = _field(64, "Open file descriptor limit.")


class TrustAnchorConfig(_Section):
    """A public key allowed to sign plugins."""

    key_id: NonBlank = Field(description="Signer key id.")
    public_key: NonBlank = Field(description="Ed25519 public key (SPKI PEM).")


class AuthPluginConfig(_Section):
    """A signed third-party auth provider, run in a sandboxed child process."""

    manifest_path: NonBlank = Field(description="Signed plugin envelope file.")
    entry_path: NonBlank | None = _field(
        None, "Entry file; default: the entry named by the envelope, beside it."
    )
    trust_anchors: list[TrustAnchorConfig] | dict[str, NonBlank] = Field(
        description="Trusted signer keys: a list of {keyId, publicKey} or a keyId -> PEM map."
    )
    allow_capabilities: list[NonBlank] = _field(
        ["readsCredentials"], "Capabilities the plugin may declare (must include readsCredentials)."
    )
    isolation: Literal["process", "worker"] = _field(
        "process", "Isolation runtime; both run the plugin in a sandboxed child process."
    )
    confinement: Literal["required", "best-effort"] = _field(
        "required",
        "Kernel confinement (no network, no filesystem): required refuses to start without it.",
    )
    timeout_ms: PositiveMilliseconds = _field(2000, "Time limit of one authenticate call.")
    max_pending_calls: PositiveInt = _field(8, "Concurrent calls before new ones are denied.")
    max_message_bytes: PositiveInt = _field(16384, "Largest message to or from the plugin.")
    resource_limits: PluginResourceLimitsConfig = _field(
        PluginResourceLimitsConfig(), "Child process resource limits."
    )
    pin: PluginPinConfig | None = _field(None, "Accept only this exact build.")
    version_floor: dict[str, NonBlank] = _field({}, "Plugin id -> lowest accepted version.")
    revoked: PluginRevokedConfig = _field(PluginRevokedConfig(), "Revoked signers and builds.")
    core_version: NonBlank | None = _field(
        None, "Core version checked against the plugin's coreRange; default: this haechi."
    )

    @field_validator("trust_anchors")
    @classmethod
    def _check_anchors(
        cls, value: list[TrustAnchorConfig] | dict[str, str]
    ) -> list[TrustAnchorConfig] | dict[str, str]:
        if not value:
            raise ValueError("at least one trust anchor is required")
        if isinstance(value, list):
            # Two entries for one key id: the last one silently decided which key may sign.
            seen: set[str] = set()
            for anchor in value:
                if anchor.key_id in seen:
                    raise ValueError(f"keyId {anchor.key_id!r} is listed more than once")
                seen.add(anchor.key_id)
        return value

    @field_validator("allow_capabilities")
    @classmethod
    def _capabilities(cls, value: list[str]) -> list[str]:
        unknown = [cap for cap in value if cap not in PLUGIN_CAPABILITIES]
        if unknown:
            raise ValueError(f"unknown capabilities {unknown}; known: {list(PLUGIN_CAPABILITIES)}")
        if "readsCredentials" not in value:
            raise ValueError("an auth plugin needs readsCredentials")
        return value


class AuthConfig(_Section):
    """Who may use the gateway."""

    provider: NonBlank = _field(
        "none",
        "none, bearer (built-in tokens), external (injected), plugin (signed), or a plugin's name.",
    )
    store: NonBlank = _field(".haechi/auth.json", "Token file of the bearer provider.")
    allowed_label_keys: list[NonBlank] = _field(
        ["team", "env", "tier", "role"], "Label keys tokens may carry."
    )
    plugin: AuthPluginConfig | None = _field(None, "Signed auth plugin (provider plugin).")
    denied_records_per_second: RecordsPerSecond = _field(
        20,
        "Authentication denials a gateway process audits one record each, per second (a "
        "burst of as many); past it denials are counted, and one record a second says how "
        "many, by reason. The same bound applies, separately, to the "
        "`plugin.authenticate.deny` records of a plugin provider. 0 = one record per denial, "
        "however many.",
    )
    stream_recheck_ms: Milliseconds = _field(
        1000,
        "While a stream is relayed to an authenticated caller (an LLM stream, an mcp-http "
        "event stream), authentication is run again on the request's credentials about "
        "once per this many milliseconds (after 80 to 100 % of it, when a frame is about to "
        "go out or when none came; streams of one credential share a check made within half "
        "of it); a caller no longer accepted (a revoked token) has its stream ended, as has "
        "one whose check is not answered within twice this (a second at least, or "
        "auth.plugin.timeoutMs when longer). 0 = never: a stream runs to its end.",
    )

    @model_validator(mode="after")
    def _plugin_needs_section(self) -> AuthConfig:
        if self.provider == "plugin" and self.plugin is None:
            raise ValueError("auth.provider plugin needs an auth.plugin section")
        return self


class PluginsConfig(_Section):
    """Plugin kill switch."""

    enabled: StrictBool = _field(True, "false refuses to start any signed plugin.")


class McpConfig(_Section):
    """Model Context Protocol protection (mcp-stdio, mcp-wrap, mcp-http)."""

    allowed_methods: list[NonBlank] = _field(
        ["initialize", "tools/call", "resources/read", "prompts/get"],
        "Client methods allowed through ('*' = all).",
    )
    protect_params: StrictBool = _field(True, "Protect request params.")
    protect_results: StrictBool = _field(True, "Protect results (response direction).")
    require_json_rpc: StrictBool = _field(True, "Refuse messages without jsonrpc: 2.0.")
    denied_records_per_second: RecordsPerSecond = _field(
        20,
        "Requests of an `mcp-http` gateway refused for an `Mcp-Session-Id` or `Last-Event-ID` "
        "the gateway did not hand the caller that a gateway process audits one record each, "
        "per second (a burst of as many); past it refusals are counted, and one record a "
        "second says how many, by reason. A budget of its own, apart from the other "
        "`deniedRecordsPerSecond`. 0 = one record per refusal, however many.",
    )

    @field_validator("allowed_methods")
    @classmethod
    def _non_empty(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("must list at least one method (or '*')")
        return value


class HaechiConfig(_Section):
    """The whole ``haechi.config.json``."""

    config_version: Annotated[StrictInt, Field(ge=1)] = _field(
        CONFIG_VERSION, "File format version; newer versions are refused."
    )
    mode: Mode = _field("dry-run", "Enforcement mode: dry-run, report-only or enforce.")
    target: TargetConfig = _field(TargetConfig(), "The protected upstream.")
    proxy: ProxyConfig = _field(ProxyConfig(), "The gateway listener.")
    response_protection: ResponseProtectionConfig = _field(
        ResponseProtectionConfig(), "Response inspection."
    )
    streaming: StreamingConfig = _field(StreamingConfig(), "Streaming.")
    limits: LimitsConfig = _field(LimitsConfig(), "Bounds.")
    policy: PolicyConfig = _field(PolicyConfig(), "Policy.")
    filters: FiltersConfig = _field(FiltersConfig(), "Detection dials.")
    keys: KeysConfig = _field(KeysConfig(), "Keys.")
    audit: AuditConfig = _field(AuditConfig(), "Audit log.")
    token_vault: TokenVaultConfig = _field(TokenVaultConfig(), "Token vault.")
    privacy: PrivacyConfig = _field(PrivacyConfig(), "Privacy profile.")
    logging: LoggingConfig = _field(LoggingConfig(), "Logs.")
    metrics: MetricsConfig = _field(MetricsConfig(), "Metrics.")
    rate_limit: RateLimitConfig = _field(
        RateLimitConfig(), "Rate limiting backend, its time limit, and the records of its refusals."
    )
    auth: AuthConfig = _field(AuthConfig(), "Authentication.")
    plugins: PluginsConfig = _field(PluginsConfig(), "Plugins.")
    mcp: McpConfig = _field(McpConfig(), "MCP.")

    @field_validator("config_version")
    @classmethod
    def _supported(cls, value: int) -> int:
        if value > CONFIG_VERSION:
            raise ValueError(
                f"unsupported configVersion {value}; this haechi reads version "
                f"{CONFIG_VERSION}. Upgrade haechi or lower configVersion"
            )
        return value

    @property
    def effective_mode(self) -> Mode:
        """The enforcement mode in effect: ``policy.mode`` if set, else ``mode``."""
        return self.policy.mode or self.mode

    def to_json_dict(self) -> dict[str, Any]:
        """The camelCase JSON document of this configuration (secrets masked)."""
        return self.model_dump(mode="json", by_alias=True)


# --- loading ---------------------------------------------------------------------------

#: Environment variables the overlay reads, and the config key each one sets.
ENV_VARIABLES: Final = {
    "HAECHI_PROXY_PORT": "proxy.port",
    "HAECHI_PROXY_HOST": "proxy.host",
    "HAECHI_UPSTREAM": "target.upstream",
    "HAECHI_MODE": "mode",
    "HAECHI_LOG_FORMAT": "logging.format",
}


def _env_value(name: str, raw: str) -> Any:
    value = raw.strip()
    if name == "HAECHI_PROXY_PORT":
        if not value.isdigit() or int(value) > 65535:
            raise ConfigError(f"{name} must be an integer from 0 to 65535")
        return int(value)
    if not value:
        raise ConfigError(f"{name} must not be blank")
    if name == "HAECHI_UPSTREAM":
        try:
            return _validate_url(value)
        except ValueError as exc:
            raise ConfigError(f"{name} {exc}") from None
    if name == "HAECHI_MODE" and value not in ("dry-run", "report-only", "enforce"):
        raise ConfigError(f"{name} must be one of dry-run, report-only, enforce")
    if name == "HAECHI_LOG_FORMAT" and value not in ("text", "json"):
        raise ConfigError(f"{name} must be text or json")
    return value


def apply_env_overlay(raw: Mapping[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    """Return a copy of the raw file document with the environment overlay applied.

    ``HAECHI_MODE`` sets the top-level ``mode`` and clears ``policy.mode``, so that the
    variable really decides the enforcement mode (the reference only set the top-level key,
    which ``policy.mode`` then shadowed).
    """
    document: dict[str, Any] = json.loads(json.dumps(raw))
    for name, key in ENV_VARIABLES.items():
        if name not in env:
            continue
        value = _env_value(name, env[name])
        section, _, leaf = key.rpartition(".")
        target = document
        if section:
            existing = target.get(section)
            if existing is not None and not isinstance(existing, dict):
                raise ConfigError(f"{section}: must be an object")
            target = target.setdefault(section, {})
        target[leaf] = value
        if name == "HAECHI_MODE" and isinstance(document.get("policy"), dict):
            document["policy"]["mode"] = None
    return document


def _is_union_tag(part: str) -> bool:
    # pydantic names the union member it tried ("constrained-str", "TlsConfig", ...) in the
    # error location; those are not keys of the file.
    return (
        part.endswith("-str")
        or part.startswith("function-")
        or part in {"str", "int"}
        or (part[:1].isupper() and part.endswith("Config"))
    )


def _location(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif _is_union_tag(part):
            continue
        else:
            text += ("." if text else "") + part
    return text or "(root)"


def _config_error(exc: ValidationError, source: str) -> ConfigError:
    lines = []
    for error in exc.errors(include_url=False, include_input=False):
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            message = "unknown key"
        message = message.removeprefix("Value error, ")
        lines.append(f"{_location(error['loc'])}: {message}")
    return ConfigError(f"{source}: " + "; ".join(lines))


def parse_config(document: Any, *, source: str = "config") -> HaechiConfig:
    """Validate a JSON document (already env-overlaid) into a :class:`HaechiConfig`."""
    if not isinstance(document, dict):
        raise ConfigError(f"{source}: the configuration must be a JSON object")
    try:
        return HaechiConfig.model_validate(document)
    except ValidationError as exc:
        raise _config_error(exc, source) from None


def load_config(
    path: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None
) -> HaechiConfig:
    """Read, overlay and validate a configuration file.

    With no ``path`` the default ``haechi.config.json`` is read when it exists and the
    built-in defaults are used when it does not; an explicit ``path`` must exist.
    """
    env = os.environ if env is None else env
    explicit = path is not None
    file_path = Path(path if path is not None else DEFAULT_CONFIG_PATH)
    try:
        text = _config_text(file_path)
    except FileNotFoundError:
        if explicit and str(file_path) != DEFAULT_CONFIG_PATH:
            raise ConfigError(f"config file not found: {file_path}") from None
        return parse_config(apply_env_overlay({}, env), source="defaults")
    except OSError as exc:
        raise ConfigError(f"cannot read {file_path}: {exc.__class__.__name__}") from None
    try:
        document = json.loads(text, object_pairs_hook=members_once)
    except RepeatedKey as exc:
        raise ConfigError(
            f"{file_path}: the key {json.dumps(exc.key[:64])} is given twice in one object "
            "(only the last would count); give it once"
        ) from None
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{file_path}: invalid JSON at line {exc.lineno} column {exc.colno}"
        ) from None
    except (ValueError, RecursionError):  # an integer past 4300 digits, nesting past the limit
        reason = "JSON nested too deeply, or a number too long, to read"
        raise ConfigError(f"{file_path}: {reason}") from None
    if not isinstance(document, dict):
        raise ConfigError(f"{file_path}: the configuration must be a JSON object")
    return parse_config(apply_env_overlay(document, env), source=str(file_path))


def _config_text(path: Path) -> str:
    """The text of the configuration file at ``path``: a regular file (or a pipe, such as a
    shell's process substitution) of at most :data:`MAX_CONFIG_BYTES`; a device such as
    ``/dev/zero`` would be read without end."""
    with path.open("rb") as handle:
        mode = os.fstat(handle.fileno()).st_mode
        if not (stat.S_ISREG(mode) or stat.S_ISFIFO(mode)):
            raise ConfigError(f"cannot read {path}: not a regular file")
        data = handle.read(MAX_CONFIG_BYTES + 1)
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(f"cannot read {path}: larger than {MAX_CONFIG_BYTES} bytes")
    return _utf8_text(path, data)


#: Byte order marks of the encodings a JSON file is sometimes saved in instead of UTF-8
#: (the UTF-32 ones first: UTF-32LE's begins with UTF-16LE's).
_OTHER_ENCODING_MARKS: Final = (
    (codecs.BOM_UTF32_LE, "UTF-32"),
    (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16"),
)


def _utf8_text(path: Path, data: bytes) -> str:
    """``data`` read as UTF-8, with a leading byte order mark left out.

    JSON is UTF-8 (RFC 8259); editors on Windows save it with a byte order mark, which says
    nothing else and is skipped. A file in UTF-16 or UTF-32 (as some editors and
    PowerShell's ``>`` write it) is refused with a message saying so: read as UTF-8 it
    failed on its first bytes with a message naming neither the encoding nor the remedy.
    """
    encoding = _wide_encoding(data)
    if encoding is not None:
        raise ConfigError(f"cannot read {path}: the file is {encoding} text; save it as UTF-8")
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"cannot read {path}: not UTF-8 text (byte {exc.start + 1} is invalid); "
            "save it as UTF-8"
        ) from None


def _wide_encoding(data: bytes) -> str | None:
    """``"UTF-16"`` or ``"UTF-32"`` when ``data`` is in one of them, told by its byte order
    mark or else by the zero bytes these put beside the ASCII character a JSON text starts
    with (RFC 4627, section 3); ``None`` otherwise. UTF-8 JSON holds no zero byte."""
    for mark, encoding in _OTHER_ENCODING_MARKS:
        if data.startswith(mark):
            return encoding
    head = data[:4]
    if len(head) == 4 and head.count(0) == 3:
        return "UTF-32"
    if 0 in head[:2]:
        return "UTF-16"
    return None


def default_config() -> HaechiConfig:
    """The built-in defaults (what ``haechi init`` writes)."""
    return HaechiConfig()


# --- reference ---------------------------------------------------------------------------


class ConfigKey(BaseModel):
    """One documented configuration key."""

    model_config = ConfigDict(frozen=True)

    key: str
    type: str
    default: Any
    description: str


def _type_text(annotation: Any) -> str:
    """A reader-friendly rendering of a field annotation."""
    origin = get_origin(annotation)
    args = get_args(annotation)
    if origin is Annotated:
        return _type_text(args[0])
    if origin is Literal:
        return " | ".join(json.dumps(arg) for arg in args)
    if origin in (Union, UnionType):
        return " | ".join(_type_text(arg) for arg in args)
    if origin is list:
        return f"list of {_type_text(args[0])}"
    if origin is dict:
        return f"map of {_type_text(args[1])}"
    if annotation is type(None):
        return "null"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "object"
    names = {bool: "boolean", int: "integer", float: "number", str: "string", SecretStr: "secret"}
    if isinstance(annotation, type):
        return names.get(annotation, annotation.__name__)
    return str(annotation)


def _nested(annotation: Any, key: str) -> Iterator[tuple[type[BaseModel], str]]:
    """Sections reachable from a field, with the key prefix their keys get."""
    origin = get_origin(annotation)
    args = get_args(annotation)
    if isinstance(annotation, type) and issubclass(annotation, _Section):
        yield annotation, f"{key}."
    elif origin is Annotated:
        yield from _nested(args[0], key)
    elif origin in (Union, UnionType):
        for arg in args:
            yield from _nested(arg, key)
    elif origin is list:
        yield from _nested(args[0], f"{key}[]")
    elif origin is dict:
        yield from _nested(args[1], f"{key}.<name>")


def _walk(model: type[BaseModel], prefix: str) -> Iterator[ConfigKey]:
    for name, info in model.model_fields.items():
        key = f"{prefix}{info.alias or to_camel(name)}"
        yield ConfigKey(
            key=key,
            type=_type_text(info.annotation),
            default=_default_json(info),
            description=info.description or "",
        )
        for nested, nested_prefix in _nested(info.annotation, key):
            yield from _walk(nested, nested_prefix)


def _default_json(info: FieldInfo) -> Any:
    if info.is_required():
        return "(required)"
    default = info.get_default(call_default_factory=True)
    if isinstance(default, BaseModel):
        return "(section)"
    return json.loads(json.dumps(default, default=str))


def config_reference() -> list[ConfigKey]:
    """Every configuration key with its type, default and meaning, in file order."""
    return list(_walk(HaechiConfig, ""))


def reference_markdown() -> str:
    """The key reference as a Markdown table (embedded in docs/configuration.md)."""

    def cell(value: str) -> str:
        return value.replace("|", "\\|")

    lines = ["| key | type | default | meaning |", "|---|---|---|---|"]
    for key in config_reference():
        default = json.dumps(key.default)
        lines.append(
            f"| `{key.key}` | {cell(key.type)} | `{cell(default)}` | {cell(key.description)} |"
        )
    return "\n".join(lines) + "\n"
