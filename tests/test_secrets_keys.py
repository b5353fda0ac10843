# SPDX-License-Identifier: Apache-2.0
"""Key-name context: which JSON object keys name a secret."""

from __future__ import annotations

import gc
import sys
from typing import Any

import pytest

from haechi.detect.catalog_secrets import is_sensitive_key

SENSITIVE = [
    "password",
    "passwd",
    "pwd",
    "passphrase",
    "passcode",
    "secret",
    "client_secret",
    "api_key",
    "apikey",
    "apiKey",
    "API-KEY",
    "Api_Key",
    "x-api-key",
    "X-Api-Key",
    "token",
    "access_token",
    "refresh_token",
    "id_token",
    "auth_token",
    "authorization",
    "Authorization",
    "proxy-authorization",
    "private_key",
    "privateKey",
    "private_key_id",
    "credentials",
    "credential",
    "connection_string",
    "connectionString",
    "db_password",
    "DB_PASSWORD",
    "dbPassword",
    "aws_secret_access_key",
    "AWS_SECRET_ACCESS_KEY",
    "secretAccessKey",
    "github_token",
    "GITHUB_TOKEN",
    "session_token",
    "csrf_token",
    "new_password",
    "current_password",
    "password2",
    "password_confirmation",
    "reset_password_token",
    "client-secret",
    "webhook_secret",
    "signing_key",
    "encryption_key",
    "Ocp-Apim-Subscription-Key",
    "account_key",
    "secrets",
    "passwords",
    "auth",
    "cookie",
    "Set-Cookie",
    "sentry_dsn",
    "dsn",
    "jwt",
    "bearer",
    "password_hash",
    "secret_key",
    "SECRET_KEY",
    "license_key",
]

NOT_SENSITIVE = [
    "token_count",
    "max_tokens",
    "tokens",
    "token_type",
    "prompt_tokens",
    "completion_tokens",
    "max_new_tokens",
    "tokenizer",
    "token_id",
    "password_policy",
    "password_hint",
    "secret_santa",
    "secretary",
    "secret_name",
    "secret_id",
    "secret_arn",
    "is_secret",
    "isSecret",
    "has_password",
    "show_password",
    "requires_password",
    "eos_token",
    "bos_token",
    "pad_token",
    "stop_token",
    "next_page_token",
    "nextPageToken",
    "page_token",
    "continuation_token",
    "sync_token",
    "progressToken",
    "progress_token",
    "aws_access_key_id",
    "key",
    "keys",
    "public_key",
    "publishable_key",
    "primary_key",
    "sort_key",
    "cache_key",
    "idempotency_key",
    "name",
    "email",
    "content",
    "role",
    "model",
    "messages",
    "author",
    "oauth",
    "",
    "_",
    "1234",
]


@pytest.mark.parametrize("name", SENSITIVE)
def test_sensitive_key_names(name: str) -> None:
    assert is_sensitive_key(name)


@pytest.mark.parametrize("name", NOT_SENSITIVE)
def test_look_alike_key_names_are_not_sensitive(name: str) -> None:
    assert not is_sensitive_key(name)


def test_separator_and_case_variants_agree() -> None:
    variants = ["apiKey", "API-KEY", "Api_Key", "api.key", "API KEY", "ApiKey"]
    assert {is_sensitive_key(v) for v in variants} == {True}


def test_a_key_holding_a_detected_value_outlives_no_call(memory_runtime: Any) -> None:
    # Built at run time, so that nothing else (a code object's constants) holds it. The key
    # is looked up as the name over its value ("does it name a secret?") and scanned itself.
    key = "".join(["jane.doe", "@", "example.com"])
    payload = {key: "hello"}
    before = sys.getrefcount(key)
    result = memory_runtime.protect_sync(payload)
    assert result.summary["byType"] == {"email": 1}
    del result
    gc.collect()
    # A cache anywhere in the process that kept the key would hold one more reference.
    assert sys.getrefcount(key) == before


def test_structural_key_names_are_classified_as_any_other_name() -> None:
    from haechi._structural_keys import STRUCTURAL_KEYS
    from haechi.detect import secrets_keys

    for name in STRUCTURAL_KEYS:
        assert secrets_keys._classify(name) == secrets_keys._classify_name(name)
    assert is_sensitive_key("".join(["db", "_password"]))
