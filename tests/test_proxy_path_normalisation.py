# SPDX-License-Identifier: Apache-2.0
"""Paths with empty or dot segments, or a trailing slash, are routed as a lenient upstream
serves them.

nginx (by default) and other servers merge runs of slashes and resolve dot segments, so
``/v1//completions`` — or ``/v1/%2fcompletions``, which the gateway routes on decoded — is
``/v1/completions`` to them; routers that ignore a trailing slash (Express's default) serve
``/v1/completions/`` as it too. The gateway classifies such a path as that route, so its checks
(a prompt given as token ids, stream descriptors) apply, while the request goes upstream
with the path as the client sent it. Requests are sent with ``http.client``, which writes
the target as given (httpx would resolve dot segments itself).
"""

from __future__ import annotations

import http.client
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from haechi.protocols import ProtocolAdapter, RouteSpec, adapter_for, normalized_path
from haechi.proxy.background import serve_in_thread
from tests.upstream_server import Gateway, UpstreamServer, gateway_in_front

OPENAI = {"target": {"type": "openai-compatible"}}
#: Spellings of ``/v1/completions`` a lenient upstream serves as that route.
LENIENT_SPELLINGS = (
    "/v1//completions",
    "/v1///completions",
    "/v1/%2fcompletions",
    "/v1/%2Fcompletions",
    "/v1/./completions",
    "/v1/x/../completions",
    "/v1/.%2fcompletions",
    "/v1/x/..%2fcompletions",
    "/v1/x%2f..%2f%2fcompletions",
    "/v1/completions/",
    "/v1/completions//",
)


class _RawPaths(UpstreamServer):
    """The test upstream, also recording each request's path as it came on the wire."""

    def __init__(self) -> None:
        super().__init__()
        self.raw_paths: list[bytes] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.raw_paths.append(scope["raw_path"])
        await super().__call__(scope, receive, send)


def _assert_model_refused(
    gateway: Gateway, upstream: _RawPaths, path: str, body: dict[str, Any]
) -> None:
    """POST ``body`` to ``path``: refused as a model the allowlist does not name, with
    nothing reaching the upstream."""
    status, answer = _post(gateway, path, body)
    assert status == 403
    assert json.loads(answer)["error"] == "haechi_model_not_allowed"
    assert upstream.raw_paths == []


def _post(gateway: Gateway, path: str, body: dict[str, Any]) -> tuple[int, bytes]:
    """POST ``body`` to ``path`` of the gateway, the target written exactly as given."""
    address = urlsplit(gateway.url)
    connection = http.client.HTTPConnection(address.hostname or "", address.port, timeout=10)
    try:
        connection.request(
            "POST", path, json.dumps(body), headers={"content-type": "application/json"}
        )
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def _refusals(gateway: Gateway) -> list[tuple[str, str]]:
    return [
        (r["operation"], r["reason"])
        for r in gateway.audit()
        if r.get("decision") == "token_ids_refused"
    ]


# -- through the gateway ----------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/v1/completions", *LENIENT_SPELLINGS])
def test_token_id_prompt_is_refused_on_every_spelling_of_the_route(
    tmp_path: Path, path: str
) -> None:
    """A prompt given as token ids is text detection cannot read: refused before the
    upstream on ``/v1/completions`` and on every path the upstream serves as it."""
    with gateway_in_front(tmp_path, OPENAI) as gateway:
        status, body = _post(gateway, path, {"model": "m", "prompt": [9906, 1917]})
        assert status == 403
        assert json.loads(body)["error"] == "haechi_token_ids_refused"
        assert gateway.upstream.received == []
        assert _refusals(gateway) == [("proxy:llm-http:completions", "token_id_input")]


@pytest.mark.parametrize(
    ("sent", "forwarded"),
    [
        *((path, path) for path in LENIENT_SPELLINGS if "/./" not in path and "/../" not in path),
        # Literal dot segments are resolved before anything looks at the path (so that no
        # spelling of /__haechi/ reaches the upstream), and forwarded resolved.
        ("/v1/./completions", "/v1/completions"),
        ("/v1/x/../completions", "/v1/completions"),
    ],
)
def test_a_text_prompt_reaches_the_upstream_on_the_path_as_sent(
    tmp_path: Path, sent: str, forwarded: str
) -> None:
    upstream = _RawPaths()
    with gateway_in_front(tmp_path, OPENAI, upstream=upstream) as gateway:
        _post(gateway, sent, {"model": "m", "prompt": "hello"})
        assert upstream.raw_paths == [forwarded.encode()]
        assert gateway.upstream.last.json() == {"model": "m", "prompt": "hello"}
        operations = {r["operation"] for r in gateway.audit()}
    assert "request:POST completions" in operations, operations


@pytest.mark.parametrize(
    ("path", "one_reading"),
    [
        ("/v1beta/models/gemini-ultra:generateContent/", True),
        ("/v1beta/models/gemini-ultra:generateContent//", False),
        ("/v1beta/models/gemini-ultra:generateContent%2f", False),
        ("/v1beta/models/gemini-ultra:generateContent/x%2f..", False),
        ("/v1beta/models//gemini-ultra:generateContent", False),
    ],
)
def test_the_model_allowlist_reads_the_model_of_every_spelling_of_a_gemini_path(
    tmp_path: Path, path: str, one_reading: bool
) -> None:
    """The upstream serves the model the path names: an allowed model in the body does not
    let another one through on a path spelled with a trailing slash or empty segments."""
    config = {"target": {"type": "gemini"}, "policy": {"modelAllowlist": ["gemini-1.5-flash"]}}
    body = {"model": "gemini-1.5-flash", "contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    upstream = _RawPaths()
    with gateway_in_front(tmp_path, config, upstream=upstream) as gateway:
        _assert_model_refused(gateway, upstream, path, body)
        # The allowed model goes upstream, on the path as sent, on a spelling servers read
        # one way (the stand-in upstream itself routes strictly, so its answer is not the
        # point here); on a spelling they read in several, it is refused too.
        allowed = path.replace("gemini-ultra", "gemini-1.5-flash")
        assert (_post(gateway, allowed, body)[0] != 403) is one_reading
        assert upstream.raw_paths == ([allowed.encode()] if one_reading else [])


#: Paths servers read in more than one way, each naming the allowed ``gpt-4o`` (or no model)
#: to the gateway's reading and ``gpt-4-forbidden`` (or another name) to some server's.
AMBIGUOUS_PATHS = (
    # An encoded slash: LiteLLM's and Starlette's ``{model:path}`` serve the deployment
    # ``gpt-4-forbidden/../gpt-4o``, a server resolving ``..`` after routing
    # ``gpt-4-forbidden``.
    "/openai/deployments/gpt-4-forbidden/..%2Fgpt-4o/chat/completions",
    "/openai/deployments/gpt-4-forbidden/%2e%2e%2fgpt-4o/chat/completions",
    # A backslash, literal or encoded, which some servers take for a slash.
    "/openai\\deployments\\gpt-4-forbidden\\chat\\completions",
    "/openai%5Cdeployments%5Cgpt-4-forbidden%5Cchat%5Ccompletions",
    # A path parameter, which Java servlet containers and Spring cut from the segment.
    "/openai/deployments;x/gpt-4-forbidden/chat/completions",
    "/openai/deployments%3Bx/gpt-4-forbidden/chat/completions",
    # An empty segment: a server that keeps it serves the deployment ``/gpt-4o``.
    "/openai/deployments//gpt-4o/chat/completions",
    # An encoded percent: a chain of servers that decode twice reads encoded slashes.
    "/openai%252Fdeployments%252Fgpt-4-forbidden%252Fchat%252Fcompletions",
)
ALLOWED_GPT_4O = {
    "target": {"type": "openai-compatible"},
    "policy": {"modelAllowlist": ["gpt-4o", "anthropic.claude-v2:1"]},
}
CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}


@pytest.mark.parametrize("path", AMBIGUOUS_PATHS)
def test_a_path_servers_read_in_several_ways_is_refused_under_a_model_allowlist(
    tmp_path: Path, path: str
) -> None:
    """The model a path names cannot be told when servers split it differently: such a
    request is refused and audited as a model refusal, without its path text."""
    upstream = _RawPaths()
    with gateway_in_front(tmp_path, ALLOWED_GPT_4O, upstream=upstream) as gateway:
        _assert_model_refused(gateway, upstream, path, CHAT)
        refusals = [r for r in gateway.audit() if r.get("decision") == "model_not_allowed"]
        assert [r["reason"] for r in refusals] == ["ambiguous_path"]
        assert "forbidden" not in gateway.audit_text()


@pytest.mark.parametrize("path", AMBIGUOUS_PATHS)
def test_a_path_servers_read_in_several_ways_is_forwarded_without_a_model_allowlist(
    tmp_path: Path, path: str
) -> None:
    upstream = _RawPaths()
    with gateway_in_front(tmp_path, OPENAI, upstream=upstream) as gateway:
        _post(gateway, path, CHAT)
    assert upstream.raw_paths == [path.encode()]


@pytest.mark.parametrize(
    ("sent", "forwarded"),
    [
        ("/v1/chat/completions", "/v1/chat/completions"),
        (
            "/openai/deployments/gpt-4o/chat/completions",
            "/openai/deployments/gpt-4o/chat/completions",
        ),
        (
            "/openai/deployments/gpt-4o/chat/completions/",
            "/openai/deployments/gpt-4o/chat/completions/",
        ),
        # The query is not the path: what it holds is read by no router.
        (
            "/openai/deployments/gpt-4o/chat/completions?a=%2F..;x",
            "/openai/deployments/gpt-4o/chat/completions",
        ),
        # Bedrock's model id with its colon encoded, as the AWS SDKs send it.
        ("/model/anthropic.claude-v2%3A1/converse", "/model/anthropic.claude-v2%3A1/converse"),
        # Dot segments, encoded or not, are resolved before the path is read and forwarded
        # resolved: the upstream gets the one path checked.
        (
            "/openai/deployments/gpt-4-forbidden/%2e%2e/gpt-4o/chat/completions",
            "/openai/deployments/gpt-4o/chat/completions",
        ),
    ],
)
def test_a_path_servers_read_one_way_is_forwarded_under_a_model_allowlist(
    tmp_path: Path, sent: str, forwarded: str
) -> None:
    upstream = _RawPaths()
    with gateway_in_front(tmp_path, ALLOWED_GPT_4O, upstream=upstream) as gateway:
        status, _answer = _post(gateway, sent, CHAT)
    assert status != 403
    assert upstream.raw_paths == [forwarded.encode()]


@pytest.mark.parametrize(
    ("prefix", "path"),
    [
        ("/openai/deployments", "/gpt-4-forbidden%2F..%2Fgpt-4o/chat/completions"),
        ("/openai/deployments/gpt-4o", "/..%2F..%2Fgpt-4-forbidden/chat/completions"),
        ("/openai", "/deployments;x/gpt-4-forbidden/chat/completions"),
    ],
)
def test_a_path_servers_read_in_several_ways_is_refused_behind_an_upstream_path_prefix(
    tmp_path: Path, prefix: str, path: str
) -> None:
    """Behind an upstream URL with a path, the upstream serves that path followed by the
    client's: a client path servers read in several ways is refused there too."""
    upstream = _RawPaths()
    with (
        serve_in_thread(upstream) as served,
        gateway_in_front(tmp_path, ALLOWED_GPT_4O, upstream_url=served.url + prefix) as gateway,
    ):
        _assert_model_refused(gateway, upstream, path, CHAT)


def test_an_unknown_path_with_empty_segments_stays_out_of_the_audit(tmp_path: Path) -> None:
    """Normalising does not make a path known: its text stays out of the audit log."""
    upstream = _RawPaths()
    with gateway_in_front(tmp_path, OPENAI, upstream=upstream) as gateway:
        _post(gateway, "/v1//users/jane@example.com/", {"note": "hi"})
        assert upstream.raw_paths == [b"/v1//users/jane@example.com/"]
        audit = gateway.audit_text()
    assert "jane" not in audit
    assert "POST unknown" in audit


# -- classification ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("adapter", "path", "route_id"),
    [
        ("openai-compatible", "/v1//chat//completions", "chat-completions"),
        ("openai-compatible", "/v1/chat/x/../completions", "chat-completions"),
        ("openai-compatible", "/../v1/./embeddings", "embeddings"),
        ("llama-cpp", "//completion", "legacy-completion"),
        ("ollama", "/api//generate", "generate"),
        ("anthropic", "/v1/messages/./", "messages"),
        ("anthropic", "/v1/messages/", "messages"),
        ("anthropic", "/v1/messages/x/", "unknown"),
        ("anthropic", "/", "unknown"),
        ("ollama", "/api/chat/", "chat"),
        ("gemini", "/v1beta/models//g:streamGenerateContent", "stream-generate-content"),
        ("gemini", "/v1beta/models/g:streamGenerateContent/", "stream-generate-content"),
        ("gemini", "/v1beta/models/g:streamGenerateContent/x/..", "stream-generate-content"),
        ("gemini", "/v1beta/models/g:streamGenerateContent/x/", "unknown"),
    ],
)
def test_paths_are_classified_by_their_normalised_form(
    adapter: str, path: str, route_id: str
) -> None:
    route = adapter_for(adapter).classify("POST", path)
    assert route.route_id == route_id
    assert route.path == path  # as given: the audit's path hash, the Gemini model


def test_only_a_route_own_path_is_remembered() -> None:
    """Spellings of a route are caller text: classified each time, never cached."""
    adapter = ProtocolAdapter("t", "t", {"/v1/completions": RouteSpec("completions")})
    for path in ("/v1//completions", "/v1/x/../completions", "/v1/completions/", "/v1/completions"):
        assert adapter.classify("POST", path).route_id == "completions"
    assert list(adapter._known) == [("POST", "/v1/completions")]


@pytest.mark.parametrize(
    ("path", "normal"),
    [
        ("/", "/"),
        ("//", "/"),
        ("/v1/completions", "/v1/completions"),
        ("/v1//completions", "/v1/completions"),
        ("/v1/completions/", "/v1/completions/"),
        ("/v1/completions//", "/v1/completions/"),
        ("/a/b/..", "/a/"),
        ("/a/b/.", "/a/b/"),
        ("/a/../..", "/"),
        ("/../a", "/a"),
        ("/a/.b/..c/", "/a/.b/..c/"),
        ("/a/%2e%2e/b", "/a/%2e%2e/b"),
    ],
)
def test_normalised_path(path: str, normal: str) -> None:
    assert normalized_path(path) == normal


_SEGMENTS = st.lists(st.sampled_from(["", ".", "..", "v1", "a.b", ".x", "m:verb", "%2f"]))


@given(_SEGMENTS)
def test_normalising_is_idempotent_and_leaves_no_empty_or_dot_segment(
    segments: list[str],
) -> None:
    path = "/" + "/".join(segments)
    normal = normalized_path(path)
    assert normalized_path(normal) == normal
    assert normal.startswith("/")
    inner = normal[1:].removesuffix("/")
    assert normal == "/" or all(s not in ("", ".", "..") for s in inner.split("/"))


@given(st.text())
def test_normalising_any_text_is_idempotent(path: str) -> None:
    normal = normalized_path(path)
    assert normalized_path(normal) == normal
    assert "//" not in normal
