# SPDX-License-Identifier: Apache-2.0
"""A plugin that vouches for anyone: the conformance run must refuse it."""


def authenticate(credential):
    return {"subject": "anyone", "issuer": "nowhere"}
