# SPDX-License-Identifier: Apache-2.0
"""Shared fixtures for the core test suite."""

from __future__ import annotations

import pytest


@pytest.fixture
def anyio_backend() -> str:
    """Run ``@pytest.mark.anyio`` tests on asyncio, the loop uvicorn and httpx use here."""
    return "asyncio"
