# SPDX-License-Identifier: Apache-2.0
"""Key-name context: does a JSON object key (or an assignment's left side) name a secret?

``{"password": "hunter2"}`` holds a secret that no value pattern can recognise; the key says
what the value is. :func:`is_sensitive_key` answers that question for every object key the
engine walks, so it is written to be cheap: one normalisation, a set lookup and a handful of
``endswith`` checks, memoised because real payloads repeat the same keys.

Normalisation lower-cases the name and drops separators and trailing digits, so ``apiKey``,
``API-KEY``, ``Api_Key`` and ``api_key2`` are one name. A name is sensitive when it *ends* in
a secret word (``db_password``, ``x-api-key``, ``github_token``); it is not when the secret
word is followed by something else (``token_count``, ``password_policy``, ``secret_santa``,
``secret_name``), when the word is the plural ``tokens`` (``max_tokens``) or when the whole
name is a boolean flag or a well-known non-secret token (``is_secret``, ``eos_token``,
``next_page_token``, MCP's ``progressToken``).

Some names are ambiguous: LLM APIs use ``token`` for one vocabulary piece of the output (every
log-probability entry of OpenAI, Ollama, llama.cpp and Gemini responses has one, vLLM adds
``decoded_token``). Under those names only a value that looks like a credential counts
(:func:`looks_like_credential`); under every other sensitive name any non-blank value does.
:func:`key_names_secret` is the decision the engine makes per value leaf.
"""

from __future__ import annotations

import re
from types import MappingProxyType
from typing import Final

from haechi._structural_keys import STRUCTURAL_KEYS

__all__ = [
    "AMBIGUOUS_TOKEN_QUALIFIERS",
    "NON_SECRET_TOKEN_QUALIFIERS",
    "is_sensitive_key",
    "key_names_secret",
    "looks_like_credential",
]

#: Words that, in front of ``token``, name something that is not a credential: LLM tokenizer
#: special tokens, stop sequences and pagination cursors.
NON_SECRET_TOKEN_QUALIFIERS: Final[tuple[str, ...]] = (
    "eos",
    "bos",
    "pad",
    "unk",
    "sep",
    "cls",
    "mask",
    "stop",
    "start",
    "end",
    "special",
    "page",
    "nextpage",
    "next",
    "continuation",
    "pagination",
    "sync",
    "cursor",
    "cancellation",
    "progress",
)

#: Words that, alone or in front of ``token``, name an LLM vocabulary piece (or a request
#: correlation id) as often as a credential: under ``token``, ``decoded_token``,
#: ``sampled_token``, ``client_token``, ... only a credential-shaped value is a secret.
AMBIGUOUS_TOKEN_QUALIFIERS: Final[tuple[str, ...]] = (
    "",
    "top",
    "sampled",
    "chosen",
    "selected",
    "generated",
    "predicted",
    "decoded",
    "draft",
    "text",
    "input",
    "output",
    "current",
    "first",
    "last",
    "prev",
    "previous",
    "client",
    "idempotency",
)

#: Names that are sensitive on their own (after normalisation).
_EXACT: Final = frozenset(
    {
        "pwd",
        "auth",
        "authorization",
        "proxyauthorization",
        "cookie",
        "setcookie",
        "jwt",
        "bearer",
        "passcode",
        "connectionstring",
        "connstr",
        "connstring",
    }
)

#: Sensitive when the normalised name ends with one of these.
_SUFFIXES: Final = (
    "password",
    "passwords",
    "passwd",
    "passphrase",
    "passcode",
    "passwordhash",
    "passwordconfirmation",
    "passwordconfirm",
    "secret",
    "secrets",
    "token",
    "credential",
    "credentials",
    "privatekey",
    "privatekeyid",
    "apikey",
    "secretkey",
    "accesskey",
    "signingkey",
    "encryptionkey",
    "masterkey",
    "accountkey",
    "authkey",
    "sessionkey",
    "licensekey",
    "subscriptionkey",
    "sharedaccesskey",
    "appkey",
    "applicationkey",
    "adminkey",
    "servicekey",
    "storagekey",
    "hmackey",
    "webhookkey",
    "clientkey",
    "connectionstring",
    "authorization",
    "dbpwd",
    "dsn",
)

#: Leading words that turn a secret word into a boolean flag or a UI hint.
_FLAG_PREFIXES: Final = frozenset(
    {
        "is",
        "has",
        "show",
        "hide",
        "use",
        "uses",
        "require",
        "requires",
        "required",
        "needs",
        "enable",
        "enabled",
        "allow",
        "remember",
        "forgot",
        "no",
        "with",
        "without",
    }
)

_NON_SECRET_TOKENS: Final = frozenset(f"{word}token" for word in NON_SECRET_TOKEN_QUALIFIERS)
_AMBIGUOUS_TOKENS: Final = frozenset(f"{word}token" for word in AMBIGUOUS_TOKEN_QUALIFIERS)
_DROP: Final = str.maketrans("", "", "_-. :/")
#: The shortest value under an ambiguous name that can count as a credential. Vocabulary
#: pieces are nearly always shorter; credentials nearly always longer.
_MIN_CREDENTIAL_LENGTH: Final = 16
#: What credentials are written with: no whitespace, quotes, brackets, pipes, commas or
#: backslashes, which mark special tokens (``<|eot_id|>``, ``[INST]``) and byte fallbacks.
_CREDENTIAL_CHARS: Final = re.compile(r"[A-Za-z0-9!#$%&*+\-./:=?@^_~]+")
#: Letters-only values count when neither case dominates: random mixed case, not camelCase.
_MIXED_CASE_SHARE: Final = (0.3, 0.7)


def _normalise(name: str) -> str:
    return name.lower().translate(_DROP).rstrip("0123456789")


def _classify(name: str) -> int:
    """0: not sensitive; 1: sensitive when the value looks like a credential; 2: sensitive.

    Structural key names are classified once (see :mod:`haechi._structural_keys`); any other
    name each time, so that no raw key outlives the call that met it.
    """
    known = _STRUCTURAL_LEVELS.get(name)
    return _classify_name(name) if known is None else known


def _classify_name(name: str) -> int:
    """What :func:`_classify` answers, worked out from the name."""
    normal = _normalise(name)
    if not normal:
        return 0
    if normal in _EXACT:
        return 2
    if normal in _NON_SECRET_TOKENS:
        return 0
    if normal in _AMBIGUOUS_TOKENS:
        return 1
    for suffix in _SUFFIXES:
        if normal.endswith(suffix):
            prefix = normal[: -len(suffix)]
            return 0 if prefix in _FLAG_PREFIXES else 2
    return 0


_STRUCTURAL_LEVELS: Final = MappingProxyType({key: _classify_name(key) for key in STRUCTURAL_KEYS})


def is_sensitive_key(name: str) -> bool:
    """Whether an object key can name a secret (ambiguous names such as ``token`` included).

    ``new_password`` and ``reset_password_token`` stay sensitive: the flag prefixes only clear
    a name that is *exactly* prefix + secret word (``is_secret``, ``show_password``).
    """
    return _classify(name) > 0


def looks_like_credential(value: str) -> bool:
    """Whether ``value`` has the shape of a machine-made credential rather than of text.

    At least 16 characters of the alphabets credentials are written in (ASCII letters, digits
    and ``!#$%&*+-./:=?@^_~``; whitespace, quotes, brackets, pipes and backslashes mark text,
    special tokens such as ``<|reserved_special_token_0|>`` and byte fallbacks such as
    ``bytes:\\xe2``), and a credential's mix of characters: a digit with
    letters, or lower case, upper case and punctuation together, or letters only with
    neither case dominating (random mixed case; camelCase words such as
    ``ForCanBeConvertedToForeach`` are mostly lower case). Runs of punctuation, words, digits
    alone and text in other scripts are not credentials.
    """
    if len(value) < _MIN_CREDENTIAL_LENGTH or not _CREDENTIAL_CHARS.fullmatch(value):
        return False
    letters = sum(char.isalpha() for char in value)
    upper = sum(char.isupper() for char in value)
    digits = sum(char.isdigit() for char in value)
    if digits and letters:
        return True
    if letters == 0 or digits:
        return False
    symbols = len(value) - letters
    if symbols and 0 < upper < letters:
        return True
    low, high = _MIXED_CASE_SHARE
    return symbols == 0 and low <= upper / letters <= high


def key_names_secret(name: str, value: str) -> bool:
    """Whether a string ``value`` under the object key ``name`` is a secret by its key alone.

    Never for a blank value; for an ambiguous name (``token``, ``decoded_token``, ...) only
    when :func:`looks_like_credential`; for every other sensitive name always.
    """
    level = _classify(name)
    if level == 0 or not value.strip():
        return False
    return level == 2 or looks_like_credential(value)
