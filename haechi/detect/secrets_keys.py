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
``next_page_token``).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Final

__all__ = ["NON_SECRET_TOKEN_QUALIFIERS", "is_sensitive_key"]

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
_DROP: Final = str.maketrans("", "", "_-. :/")


def _normalise(name: str) -> str:
    return name.lower().translate(_DROP).rstrip("0123456789")


@lru_cache(maxsize=8192)
def is_sensitive_key(name: str) -> bool:
    """Whether an object key names a secret whose value must be treated as one.

    ``new_password`` and ``reset_password_token`` stay sensitive: the flag prefixes only clear
    a name that is *exactly* prefix + secret word (``is_secret``, ``show_password``).
    """
    normal = _normalise(name)
    if not normal:
        return False
    if normal in _EXACT:
        return True
    if normal in _NON_SECRET_TOKENS:
        return False
    for suffix in _SUFFIXES:
        if normal.endswith(suffix):
            prefix = normal[: -len(suffix)]
            return prefix not in _FLAG_PREFIXES
    return False
