# SPDX-License-Identifier: Apache-2.0
"""A well-behaved plugin that denies with ``{"deny": true}``, the documented alternative to
``None``."""

import hmac

_EXPECTED = b"Bearer let-me-in"


def authenticate(credential):
    if hmac.compare_digest(credential.encode("utf-8"), _EXPECTED):
        return {"subject": "svc-reporting@example.com", "issuer": "https://idp.example.com"}
    return {"deny": True}
