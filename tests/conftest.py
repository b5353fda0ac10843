# SPDX-License-Identifier: Apache-2.0
"""Shared fixtures and settings for the core test suite."""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

# On CI the property tests run a fixed sequence of examples (derandomized), so a result is
# reproducible from the commit alone; on a developer machine they explore new examples on
# every run, which is where new counterexamples come from.
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
settings.register_profile("dev", print_blob=True)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


@pytest.fixture
def anyio_backend() -> str:
    """Run ``@pytest.mark.anyio`` tests on asyncio, the loop uvicorn and httpx use here."""
    return "asyncio"
