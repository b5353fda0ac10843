# SPDX-License-Identifier: Apache-2.0
"""Anchors on standard output: a gateway whose output nobody reads any more cannot write an
audit record, and says so on its readiness endpoint."""

from __future__ import annotations

from pathlib import Path

import httpx

from haechi.proxy.background import serve_in_thread
from tests.test_proxy_server import _proxy_process, _write_config
from tests.upstream_server import UpstreamServer

_CHAT = {"model": "m", "messages": [{"role": "user", "content": "hello"}]}


def test_a_gateway_whose_anchor_reader_went_away_is_not_ready(tmp_path: Path) -> None:
    with serve_in_thread(UpstreamServer()) as upstream:
        config = _write_config(tmp_path, upstream.url, {"audit": {"anchor": {"mode": "stdout"}}})
        with _proxy_process(config) as (process, url, _lines):
            assert httpx.get(f"{url}/__haechi/ready", timeout=10).status_code == 200
            assert httpx.post(f"{url}/v1/chat/completions", json=_CHAT, timeout=10).is_success
            assert process.stdout is not None
            process.stdout.close()  # the log collector reading the anchors is gone
            # No record (and so no request) can be written now, and ready says so.
            refused = httpx.post(f"{url}/v1/chat/completions", json=_CHAT, timeout=10)
            assert refused.status_code == 500
            ready = httpx.get(f"{url}/__haechi/ready", timeout=10)
            assert ready.status_code == 503
            assert ready.json()["checks"]["auditWritable"] is False
