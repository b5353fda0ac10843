# SPDX-License-Identifier: Apache-2.0
"""An auth plugin accepting one bearer credential, each time after 1.5 s (an identity
provider far away); any other credential is denied at once."""

import hmac
import time

_EXPECTED = b"Bearer let-me-in"


def authenticate(credential):
    if not hmac.compare_digest(credential.encode("utf-8"), _EXPECTED):
        return None
    time.sleep(1.5)
    return {
        "subject": "svc-reporting@example.com",
        "issuer": "https://idp.example.com",
        "type": "service",
        "scopes": ["chat:write"],
        "labels": {},
    }
