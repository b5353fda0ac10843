# SPDX-License-Identifier: Apache-2.0
"""Provider-independent secret rules: JWTs, HTTP authorization headers, URLs with embedded
passwords, and secrets assigned to keys that name them.

Database and other URLs: the finding is the **password part** of ``scheme://user:password@host``
only, so a redacted URL still shows which database it pointed at. The password may contain
``@`` and ``:`` (the last ``@`` before the host ends it) but not ``/``, ``?``, ``#`` or
whitespace, which a well-formed URL percent-encodes.

Assignments: ``assignment-secret`` (API keys, secrets, tokens, credentials; value of 12 or more
characters, the reference minimum) and ``assignment-password`` (passwords and passphrases;
6 or more) match ``<key><sep><value>`` where the key word may have any prefix
(``db_password``, ``my_api_key``, ``GITHUB_TOKEN``) but must end the key (``token_count`` and
``password_policy`` do not match), the separator is ``:``, ``=``, ``=>`` or ``:=``, and the key
and value may be quoted, also with escaped quotes inside a JSON string. Quoted values run to
the closing quote (password values may contain spaces); unquoted values end at whitespace,
quotes, ``; , & < >`` and brackets. Placeholders and code references are not secrets (see
:mod:`haechi.detect.secrets_validators`); that only keeps these generic rules quiet and never
suppresses a provider rule matching the same text.
"""

from __future__ import annotations

from typing import Final

from haechi.detect.patterns import word_start
from haechi.detect.rule import Rule
from haechi.detect.secrets_keys import NON_SECRET_TOKEN_QUALIFIERS
from haechi.detect.secrets_shapes import KEY_SEPARATOR, SECRET_TYPE, secret_rule
from haechi.detect.secrets_validators import (
    assignment_password_ok,
    assignment_secret_ok,
    basic_credentials_ok,
    bearer_token_ok,
    jwt_header_ok,
    not_placeholder,
)

__all__ = ["ASSIGNMENT_RULES", "HEADER_RULES", "URL_RULES"]


HEADER_RULES: Final[tuple[Rule, ...]] = (
    secret_rule(
        "jwt",
        SECRET_TYPE,
        word_start("eyJ") + r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+",
        ("eyJ",),
        "JSON Web Token whose header decodes to JSON naming an alg",
        validator=jwt_header_ok,
        confidence=0.9,
    ),
    secret_rule(
        "bearer-token",
        SECRET_TYPE,
        word_start("(?i:bearer)") + r"[ \t]+[A-Za-z0-9._~+/-]{16,}=*",
        ("bearer",),
        "Bearer credential (any casing of the scheme name)",
        validator=bearer_token_ok,
        confidence=0.9,
    ),
    secret_rule(
        "http-basic-auth",
        SECRET_TYPE,
        word_start("(?i:basic)") + r"[ \t]+[A-Za-z0-9+/]{6,}={0,2}(?![A-Za-z0-9+/=])",
        ("basic",),
        "HTTP Basic credentials that decode to user:password",
        validator=basic_credentials_ok,
        confidence=0.9,
    ),
)

_URL_USERINFO: Final = r"[^\s:@/?#\"'<>]*:(?P<value>[^\s/?#\"'<>]{1,256})@(?=[^\s@/?#\"'<>])"
#: What every ``_URL_USERINFO`` starts with, checked before the scheme look-behinds so that
#: the many ``://`` of URLs without credentials fail at once.
_USERINFO_AHEAD: Final = r"(?=[^\s/?#\"'<>]*@)"


#: Any URL scheme (2 to 31 characters), checked looking back from ``://`` so that the generic
#: rule only does work where the text has a ``://``: one fixed-width look-behind per length.
_ANY_SCHEME: Final = (
    "(?:"
    + "|".join(
        f"(?<=(?<![A-Za-z0-9+.-])[A-Za-z][A-Za-z0-9+.-]{{{length}}}://)" for length in range(1, 31)
    )
    + ")"
)


def _url_rule(
    rule_id: str, scheme: str | None, prefilter: tuple[str, ...], description: str
) -> Rule:
    """A password-in-URL rule for ``scheme`` (a regex), or for any scheme when ``None``."""
    scheme_then_userinfo = (
        f"://{_USERINFO_AHEAD}{_ANY_SCHEME}"
        if scheme is None
        else f"(?<![A-Za-z0-9+.-])(?i:{scheme})://"
    )
    return secret_rule(
        rule_id,
        SECRET_TYPE,
        scheme_then_userinfo + _URL_USERINFO,
        prefilter,
        description,
        validator=not_placeholder,
        confidence=0.9,
    )


URL_RULES: Final[tuple[Rule, ...]] = (
    _url_rule(
        "postgres-url-password",
        r"postgres(?:ql)?(?:\+[a-z0-9]+)?",
        ("postgres",),
        "Password in a PostgreSQL connection URL",
    ),
    _url_rule(
        "mysql-url-password",
        r"(?:mysql|mariadb)x?(?:\+[a-z0-9]+)?",
        ("mysql", "mariadb"),
        "Password in a MySQL or MariaDB connection URL",
    ),
    _url_rule(
        "mongodb-url-password",
        r"mongodb(?:\+srv)?",
        ("mongodb",),
        "Password in a MongoDB connection URL (mongodb:// or mongodb+srv://)",
    ),
    _url_rule(
        "redis-url-password",
        r"rediss?(?:\+sentinel)?",
        ("redis",),
        "Password in a Redis connection URL (redis:// or rediss://)",
    ),
    _url_rule(
        "amqp-url-password", r"amqps?", ("amqp",), "Password in an AMQP (RabbitMQ) connection URL"
    ),
    _url_rule(
        "mssql-url-password",
        r"(?:mssql|sqlserver)(?:\+[a-z0-9]+)?",
        ("mssql", "sqlserver"),
        "Password in a Microsoft SQL Server connection URL",
    ),
    _url_rule(
        "snowflake-url-password",
        r"snowflake",
        ("snowflake",),
        "Password in a Snowflake connection URL",
    ),
    _url_rule(
        "url-embedded-credentials",
        None,
        ("://",),
        "Password in any other scheme://user:password@host URL",
    ),
)

#: Words that make ``<word>[_.-]?key`` a secret key name (``api_key``, ``clientKey``, ...).
_KEY_QUALIFIERS: Final = (
    "api", "app", "apps", "application", "secret", "private", "access", "signing",
    "encryption", "master", "account", "auth", "client", "admin", "service", "storage",
    "subscription", "license", "webhook", "hmac",
)  # fmt: skip


def _key_words(words: dict[str, str]) -> str:
    """Key words in any case, never right after ``[`` (so a ``[TOKEN:...]`` marker echoed
    back is not read as ``TOKEN: ...``). ``words`` maps each first letter to the regex of
    what follows it.

    The pattern starts with one plain character class of the first letters, so the regex
    engine skips ahead to the positions holding one of them instead of trying every key word
    at every position of the text (a pattern compiled case-insensitively, or starting with a
    look-behind, cannot skip). Everything that refines a key word (its qualifiers, the words
    that disqualify it) is therefore a look-behind written after it.
    """
    letters = "".join(f"{first.upper()}{first}" for first in words)
    if len(words) == 1:
        return f"[{letters}](?<!\\[.)(?i:{next(iter(words.values()))})"
    branches = "|".join(
        f"(?<=[{first.upper()}{first}])(?i:{rest})" for first, rest in words.items()
    )
    return f"[{letters}](?<!\\[.)(?:{branches})"


#: ``key`` ending one of the qualified key names, checked looking back from ``key``.
_QUALIFIED_KEY: Final = (
    "ey(?:"
    + "|".join(
        f"(?<={word}{sep}key)(?<!\\[{word}{sep}key)"
        for word in _KEY_QUALIFIERS
        for sep in ("", "[_.-]")
    )
    + ")"
)
#: ``token``, unless it names a tokenizer special token or a pagination cursor.
_CREDENTIAL_TOKEN: Final = "oken" + "".join(
    f"(?<!{word}token)(?<!{word}_token)(?<!{word}-token)" for word in NON_SECRET_TOKEN_QUALIFIERS
)
_SECRET_KEY_WORDS: Final = _key_words(
    {"k": _QUALIFIED_KEY, "s": "ecret", "t": _CREDENTIAL_TOKEN, "c": "redentials?"}
)
_LOGIN_KEY_WORDS: Final = _key_words({"p": "assw(?:or)?d|assphrase|asscode|wd"})
_UNQUOTED_CHARS: Final = r"[^\s\"'`;,&<>(){}\[\]]"


def _value(minimum: int, *, spaces: bool) -> str:
    """The ``value`` group: double-, single- or back-quoted, or a bare run (see module doc)."""
    ws = r"\r\n" if spaces else r"\s"
    return (
        "(?P<value>"
        rf"(?<=\")(?:[^\"\\{ws}]|\\[^\"{ws}]){{{minimum},256}}(?=\\?\")"
        rf"|(?<=')(?:[^'\\{ws}]|\\[^'{ws}]){{{minimum},256}}(?=\\?')"
        rf"|(?<=`)[^`{ws}]{{{minimum},256}}(?=`)"
        rf"|(?<![\"'`]){_UNQUOTED_CHARS}{{{minimum - 1},255}}[^\s\"'`;,&<>(){{}}\[\].:]"
        rf"(?!{_UNQUOTED_CHARS}*[(\[])"
        ")"
    )


def _assignment(key_words: str, minimum: int, *, spaces: bool) -> str:
    return f"{key_words}{KEY_SEPARATOR}{_value(minimum, spaces=spaces)}"


ASSIGNMENT_RULES: Final[tuple[Rule, ...]] = (
    secret_rule(
        "assignment-secret",
        SECRET_TYPE,
        _assignment(_SECRET_KEY_WORDS, 12, spaces=False),
        ("key", "secret", "token", "credential"),
        "Value assigned to an API key, secret, token or credentials key (12+ characters)",
        validator=assignment_secret_ok,
        confidence=0.85,
        anchored=True,
    ),
    secret_rule(
        "assignment-password",
        SECRET_TYPE,
        _assignment(_LOGIN_KEY_WORDS, 6, spaces=True),
        ("passw", "passphrase", "passcode", "pwd"),
        "Value assigned to a password or passphrase key (6+ characters)",
        validator=assignment_password_ok,
        confidence=0.85,
        anchored=True,
    ),
    secret_rule(
        "xml-secret-element",
        SECRET_TYPE,
        r"<((?:[A-Za-z_][\w.-]*:)?[A-Za-z_.-]*?"
        r"(?:password|passwd|secret|token|api[_.-]?key|access[_.-]?key|secret[_.-]?key))>"
        r"(?P<value>[^<\s]{6,256})</\1>",
        ("passw", "secret", "token", "key>"),
        "Value of an XML element naming a password, secret, token or key (Maven, Tomcat, ...)",
        validator=assignment_password_ok,
        confidence=0.85,
        ignore_case=True,
    ),
    secret_rule(
        "cli-secret-flag",
        SECRET_TYPE,
        r"(?<![A-Za-z0-9_-])--(?:password|passwd|pass|token|api-?key|secret|client-secret"
        r"|auth-token|access-token)[ \t]+[\"']?(?P<value>[^\s\"'`;&|<>-][^\s\"'`;&|<>]{5,255})",
        (
            "--pass",
            "--token",
            "--api",
            "--secret",
            "--client-secret",
            "--auth-token",
            "--access-token",
        ),
        "Value after a --password / --token / --api-key command-line flag",
        validator=assignment_password_ok,
        confidence=0.85,
    ),
)
