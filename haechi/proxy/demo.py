# SPDX-License-Identifier: Apache-2.0
"""``haechi demo``: watch the gateway protect a chat request, end to end, with no setup.

Everything runs in this process on free loopback ports, in a temporary directory that is
removed afterwards: a stand-in model server speaking the OpenAI wire format (it records what
it receives and echoes the user's message back), and the gateway in enforce mode in front of
it, with its own key file, audit log and token vault. Two chat requests go through:

1. an email address and a phone number: the email is tokenized (the model sees only a
   token, and the answer gets the address back because the gateway restores tokens issued
   for that same request), the phone number is masked;
2. an API key and a card number: both block by policy, so the gateway answers 403 and the
   request never reaches the model.

Finally the audit log's hash chain is verified. The exit code is 0 only when the model never
saw the email, the second request was blocked and the chain verifies.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Any, Final, TextIO

import httpx

__all__ = ["DEMO_EMAIL", "run_demo"]

DEMO_EMAIL: Final = "jane.doe@example.com"
_PHONE: Final = "+1 415 555 0132"
_API_KEY: Final = "sk-proj-" + "Zq3" * 16
_CARD: Final = "4111 1111 1111 1111"
_FIRST: Final = f"Please write to {DEMO_EMAIL} or call {_PHONE} about my order."
_SECOND: Final = f"Here is my key {_API_KEY} and my card {_CARD}, please store them."
_WIDTH: Final = 78


def _config(workdir: Path, upstream: str) -> dict[str, Any]:
    state = workdir / ".haechi"
    return {
        "mode": "enforce",
        "target": {"type": "openai-compatible", "upstream": upstream},
        "policy": {
            "mode": "enforce",
            "actions": {"email": "tokenize", "phone": "mask"},
        },
        "responseProtection": {"enabled": True},
        "keys": {"keyFile": str(state / "dev.keys.json")},
        "audit": {"path": str(state / "audit.jsonl")},
        "tokenVault": {"path": str(state / "token-vault.json"), "detokenizeResponses": True},
    }


def _chat(text: str) -> dict[str, Any]:
    return {"model": "demo-model", "messages": [{"role": "user", "content": text}]}


class _Report:
    """Prints the demo in labelled, wrapped lines."""

    def __init__(self, out: TextIO) -> None:
        self._out = out

    def title(self, text: str) -> None:
        self._out.write(f"\n{text}\n{'-' * len(text)}\n")

    def line(self, label: str, value: str) -> None:
        prefix = f"  {label:<18}"
        lines = textwrap.wrap(
            value, _WIDTH - len(prefix), break_long_words=True, break_on_hyphens=False
        ) or [""]
        self._out.write(prefix + lines[0] + "\n")
        for more in lines[1:]:
            self._out.write(" " * len(prefix) + more + "\n")


def _answer(response: httpx.Response) -> str:
    try:
        return str(response.json()["choices"][0]["message"]["content"])
    except (ValueError, KeyError, IndexError, TypeError):
        return response.text


def _received_text(body: Any) -> str:
    from haechi.proxy.demo_upstream import last_user_text

    return last_user_text(body)


def run_demo(out: TextIO | None = None) -> int:
    """Run the demo, print it to ``out`` (stdout), and return the exit code."""
    from haechi.audit import verify_chain
    from haechi.crypto import init_key_file
    from haechi.proxy.app import GatewayApp
    from haechi.proxy.background import serve_in_thread
    from haechi.proxy.demo_upstream import DemoUpstream
    from haechi.proxy.server import uvicorn_options
    from haechi.runtime import create_runtime

    report = _Report(out or sys.stdout)
    upstream_app = DemoUpstream()
    with tempfile.TemporaryDirectory(prefix="haechi-demo-") as directory:
        workdir = Path(directory)
        with serve_in_thread(upstream_app) as upstream:
            settings = _config(workdir, upstream.url)
            init_key_file(settings["keys"]["keyFile"])
            runtime = create_runtime(settings)
            gateway_app = GatewayApp(runtime)
            options = uvicorn_options(runtime.config)
            with (
                serve_in_thread(gateway_app, **options) as gateway,
                httpx.Client(base_url=gateway.url, timeout=30) as client,
            ):
                report.title("haechi demo: a gateway in enforce mode in front of a model")
                report.line("gateway", f"{gateway.url}  ->  model server {upstream.url}")
                report.line("working directory", f"{workdir} (removed afterwards)")

                report.title("1. Email and phone number: tokenized, masked, restored")
                first = client.post("/v1/chat/completions", json=_chat(_FIRST))
                seen_first = (
                    _received_text(upstream_app.received[-1]) if upstream_app.received else ""
                )
                report.line("client sent", _FIRST)
                report.line("model received", seen_first or "(nothing)")
                report.line("client got back", f"HTTP {first.status_code}: {_answer(first)}")

                report.title("2. API key and card number: blocked by policy")
                before = len(upstream_app.received)
                second = client.post("/v1/chat/completions", json=_chat(_SECOND))
                reached = len(upstream_app.received) > before
                blocked = second.status_code == 403
                document = second.json() if blocked else {}
                types = ", ".join(sorted(document.get("summary", {}).get("byType", {})))
                report.line("client sent", _SECOND)
                report.line(
                    "gateway answered",
                    f"HTTP {second.status_code} {document.get('error', '')} (types: {types})",
                )
                report.line("model received", "something (!)" if reached else "nothing")
            asyncio.run(runtime.aclose())

        report.title("3. Audit log")
        result = verify_chain(Path(settings["audit"]["path"]))
        audit_text = Path(settings["audit"]["path"]).read_text(encoding="utf-8")
        report.line("records", str(result.records))
        report.line("hash chain", "valid" if result.valid else f"BROKEN ({result.reason})")
        clean = DEMO_EMAIL not in audit_text and _CARD not in audit_text
        report.line("raw values in log", "none" if clean else "FOUND (!)")
        report.line("a record", _sample(audit_text))

    hidden = DEMO_EMAIL not in json.dumps(upstream_app.received)
    ok = hidden and blocked and not reached and result.valid and clean
    report.title("Result")
    report.line("email hidden", "yes" if hidden else "NO")
    report.line("card request", "blocked" if blocked and not reached else "NOT blocked")
    report.line("demo", "OK" if ok else "FAILED")
    return 0 if ok else 1


def _sample(audit_text: str) -> str:
    lines = [line for line in audit_text.splitlines() if line.strip()]
    if not lines:
        return "(none)"
    record = json.loads(lines[0])
    keep = ("operation", "mode", "blocked", "summary")
    return json.dumps({key: record.get(key) for key in keep}, ensure_ascii=False)
