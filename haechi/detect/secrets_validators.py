# SPDX-License-Identifier: Apache-2.0
"""Validators that confirm secret candidates by decoding their structure.

Many credential formats are self-describing: a JWT header is base64url JSON naming an ``alg``,
an Azure account key is exactly 64 bytes of base64, a Sentry org token embeds a JSON claim set.
Decoding that structure rejects look-alikes without any network call. The generic assignment
rules also use :func:`is_placeholder` and :func:`looks_like_code_reference` to skip values that
are obviously not secrets (``${DB_PASSWORD}``, ``********``, ``settings.API_KEY``).

Every validator receives the finding text (the ``value`` group when the pattern has one, the
whole match otherwise), answers a ``bool`` and never raises.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable
from typing import Any, Final
from urllib.parse import unquote

__all__ = [
    "assignment_password_ok",
    "assignment_secret_ok",
    "aws_bedrock_key_ok",
    "b64_json_with",
    "base64_bytes",
    "basic_credentials_ok",
    "bearer_token_ok",
    "discord_bot_token_ok",
    "docker_auth_ok",
    "is_placeholder",
    "jwt_header_ok",
    "looks_like_code_reference",
    "not_placeholder",
    "openai_marker_ok",
    "sas_signature_ok",
]

_Validator = Callable[[str], bool]


def _b64decode(text: str) -> bytes | None:
    """Decode standard or URL-safe base64, with or without padding; ``None`` if invalid."""
    cleaned = text.rstrip("=")
    if not cleaned:
        return None
    if "-" in cleaned or "_" in cleaned:
        cleaned = cleaned.replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(cleaned + "=" * (-len(cleaned) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None


def _json_object(raw: bytes | None) -> dict[str, Any] | None:
    if raw is None:
        return None
    try:
        value = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def jwt_header_ok(text: str) -> bool:
    """A JWT's first segment must decode to a JSON object with a string ``alg``."""
    header = _json_object(_b64decode(text.split(".", 1)[0]))
    return header is not None and isinstance(header.get("alg"), str)


def b64_json_with(
    *keys: str, strip_prefix: str = "", separator: str | None = None, name: str
) -> _Validator:
    """Build a validator: after ``strip_prefix`` (and up to ``separator`` when given), the text
    is base64 of a JSON object holding every key in ``keys``. Used by tokens that embed a
    claim set (Sentry org tokens, Grafana Cloud tokens, 1Password service accounts)."""

    def check(text: str) -> bool:
        body = text[len(strip_prefix) :] if text.startswith(strip_prefix) else text
        if separator is not None:
            body = body.split(separator, 1)[0]
        payload = _json_object(_b64decode(body))
        return payload is not None and all(key in payload for key in keys)

    check.__name__ = check.__qualname__ = name
    return check


def base64_bytes(length: int, *, name: str) -> _Validator:
    """Build a validator: the text is base64 of exactly ``length`` bytes (account keys)."""

    def check(text: str) -> bool:
        raw = _b64decode(text)
        return raw is not None and len(raw) == length

    check.__name__ = check.__qualname__ = name
    return check


def sas_signature_ok(text: str) -> bool:
    """An Azure SAS ``sig`` is the URL-encoded base64 of a 32-byte HMAC-SHA256."""
    raw = _b64decode(unquote(text))
    return raw is not None and len(raw) == 32


def aws_bedrock_key_ok(text: str) -> bool:
    """A Bedrock long-term API key is ``ABSK`` + base64 of ``BedrockAPIKey-...``."""
    raw = _b64decode(text[4:])
    return raw is not None and raw.startswith(b"BedrockAPIKey-")


def openai_marker_ok(text: str) -> bool:
    """OpenAI keys embed ``T3BlbkFJ`` (base64 of ``OpenAI``); a look-alike does not."""
    return "T3BlbkFJ" in text


def discord_bot_token_ok(text: str) -> bool:
    """A Discord bot token's first segment is the base64 of the bot's numeric snowflake id."""
    raw = _b64decode(text.split(".", 1)[0])
    return raw is not None and raw.isdigit() and 17 <= len(raw) <= 20


def _printable_credentials(raw: bytes | None) -> bool:
    if raw is None:
        return False
    try:
        decoded = raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    _, sep, password = decoded.partition(":")
    return bool(sep and password) and decoded.isprintable() and not is_placeholder(password)


def basic_credentials_ok(text: str) -> bool:
    """``Basic <b64>`` must decode to printable ``user:password`` with a non-empty password."""
    parts = text.split()
    return bool(parts) and _printable_credentials(_b64decode(parts[-1]))


def docker_auth_ok(text: str) -> bool:
    """A Docker config ``auth`` value is base64 of ``user:password``."""
    return _printable_credentials(_b64decode(text))


_MASK_CHARS: Final = frozenset("*xX•·#._-~?")
_TEMPLATE = re.compile(
    r"""^(?:\$\{.*\}|\$\(.*\)|\{\{.*\}\}|<[^<>]*>|%\(?[A-Za-z_]*\)?s|%[A-Za-z_]+%|\$[A-Za-z_]\w*)$""",
    re.DOTALL,
)
_YOUR_PREFIX = re.compile(r"^(?:your|my|insert|enter|replace)[_\- .]?", re.IGNORECASE)
_SCHEMA_WORDS: Final = frozenset(
    {
        "string",
        "null",
        "none",
        "true",
        "false",
        "undefined",
        "required",
        "optional",
        "redacted",
        "removed",
        "omitted",
        "hidden",
        "masked",
        "boolean",
        "integer",
        "number",
        "object",
        "nullable",
        "default",
        "provided",
        "notset",
        "not-set",
        "not_set",
        "placeholder",
    }
)
_GENUINE_MARKER = re.compile(
    r"^\[(?:REDACTED:[a-z][a-z0-9_]*|TOKEN:tok_[a-z0-9_]+_[0-9a-f]{16,}|TOKEN:[a-z][a-z0-9_]*:[0-9a-f]{8,})\]$"
)
_ENC_MARKER = re.compile(r"^\[HAECHI_ENC:([A-Za-z0-9_-]+)\]$")


def is_placeholder(value: str) -> bool:
    """Whether ``value`` is plainly not a credential: a mask, a template reference, a schema
    word, a ``your_api_key_here`` stand-in or one of haechi's own genuine markers.

    Deliberately *not* placeholders: ``changeme``, ``password``, ``admin`` and other default
    credentials, because a default password that works is still a credential.
    """
    stripped = value.strip()
    if not stripped or set(stripped) <= _MASK_CHARS:
        return True
    if stripped.lower() in _SCHEMA_WORDS or _TEMPLATE.match(stripped):
        return True
    if _YOUR_PREFIX.match(stripped) and not any(c.isdigit() for c in stripped):
        return True
    if _GENUINE_MARKER.match(stripped):
        return True
    enc = _ENC_MARKER.match(stripped)
    if enc is not None:
        envelope = _json_object(_b64decode(enc.group(1)))
        return envelope is not None and {"kid", "aadHash"} <= envelope.keys()
    return False


def not_placeholder(value: str) -> bool:
    """Validator form of :func:`is_placeholder` for URL passwords and keyed values."""
    return not is_placeholder(value)


_DOTTED_REF = re.compile(r"^[A-Za-z_$][\w$]*(?:(?:\.|::|->)[A-Za-z_$][\w$]*)+$")
_CALL_OR_INDEX = re.compile(r"^[A-Za-z_$][\w$.:>-]*[(\[]")
_CONSTANT = re.compile(r"^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+$")


def looks_like_code_reference(value: str) -> bool:
    """Whether ``value`` reads as source code naming a secret rather than holding one:
    ``settings.API_KEY``, ``os.environ["X"]``, ``getpass()``, ``OPENAI_API_KEY``."""
    return bool(_DOTTED_REF.match(value) or _CALL_OR_INDEX.match(value) or _CONSTANT.match(value))


def assignment_password_ok(value: str) -> bool:
    """Accept a password-like assignment value unless it is a placeholder, a code reference
    or a filesystem path (``PWD=/home/user`` is a working directory, not a password)."""
    return not (
        is_placeholder(value)
        or looks_like_code_reference(value)
        or value.startswith(("/", "~/", "./", "../"))
    )


def assignment_secret_ok(value: str) -> bool:
    """Like :func:`assignment_password_ok`, and all-digit values are ids or counts, not keys."""
    return assignment_password_ok(value) and not value.isdigit()


def bearer_token_ok(text: str) -> bool:
    """Reject ``Bearer YOUR_ACCESS_TOKEN`` stand-ins; for the non-canonical spellings
    (``bearer``, ``BEARER``), which also occur in prose, the token must contain a digit."""
    parts = text.split(None, 1)
    if len(parts) != 2:
        return False
    keyword, token = parts
    if is_placeholder(token) or _CONSTANT.match(token):
        return False
    return keyword == "Bearer" or any(c.isdigit() for c in token)
