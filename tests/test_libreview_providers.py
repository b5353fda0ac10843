# SPDX-License-Identifier: Apache-2.0
"""A provider injected as ``None`` is the configured one (only ``token_vault: None`` means
"no vault"): it neither opens a gateway configured for bearer tokens nor fails its requests."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.upstream_server import gateway_in_front

_CHAT = {"model": "m", "messages": [{"role": "user", "content": "hello"}]}


@pytest.mark.parametrize("key", ["auth", "metrics", "rate_limiter"])
def test_a_provider_injected_as_none_is_the_configured_one(tmp_path: Path, key: str) -> None:
    config = {"auth": {"provider": "bearer"}}
    with gateway_in_front(tmp_path, config, providers={key: None}) as gateway:
        response = httpx.post(f"{gateway.url}/v1/chat/completions", json=_CHAT)
        assert response.status_code == 401
        assert response.json()["error"] == "haechi_auth_denied"
        assert gateway.upstream.received == []
        assert gateway.runtime.auth is not None
        assert gateway.runtime.metrics is not None
        assert gateway.runtime.rate_limiter is not None
