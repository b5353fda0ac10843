# SPDX-License-Identifier: Apache-2.0
"""A well-behaved auth plugin: one bearer credential maps to one service identity."""

import hmac

_EXPECTED = b"Bearer let-me-in"


def authenticate(credential):
    if hmac.compare_digest(credential.encode("utf-8"), _EXPECTED):
        return {
            "subject": "svc-reporting@example.com",
            "issuer": "https://idp.example.com",
            "type": "service",
            "scopes": ["chat:write"],
            "labels": {"team": "finance"},
        }
    return None
