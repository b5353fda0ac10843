# SPDX-License-Identifier: Apache-2.0
"""Upstream responses through the gateway (§13.5): protection, failure modes, limits."""

from __future__ import annotations

import gzip
import json
import socket
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from haechi.proxy.responses import declares_other_charset
from tests.upstream_server import Gateway, Reply, SharedGateways, gateway_in_front

EMAIL = "jane.doe@example.com"
PROTECTED = {"responseProtection": {"enabled": True}}


def chat(text: str = "hello") -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "user", "content": text}]}


def post(gateway: Gateway, body: Any = None) -> httpx.Response:
    return httpx.post(f"{gateway.url}/v1/chat/completions", json=body or chat(), timeout=10)


def decisions(gateway: Gateway) -> list[tuple[str, str]]:
    return [(r["decision"], r["reason"]) for r in gateway.audit() if "decision" in r]


@pytest.fixture
def protected(shared_gateway: SharedGateways) -> Gateway:
    """The module's gateway that protects answers, its upstream's record emptied."""
    return shared_gateway(PROTECTED)


def test_leaked_pii_in_the_answer_is_redacted(protected: Gateway) -> None:
    protected.upstream.queue(Reply(text=f"contact {EMAIL}"))
    response = post(protected)
    assert response.status_code == 200
    assert EMAIL not in response.text
    assert response.headers["cache-control"] == "no-store"
    assert response.json()["choices"][0]["message"]["content"].startswith("contact ")


def test_answer_with_a_card_is_blocked(protected: Gateway) -> None:
    protected.upstream.queue(Reply(text="card 4111 1111 1111 1111"))
    response = post(protected)
    assert response.status_code == 502
    assert response.json()["error"] == "haechi_response_policy_block"
    assert "4111" not in response.text


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ('db password="[REDACTED:email] Tr0ub4dor&3xyz"', "Tr0ub4dor&3xyz"),
        ("dsn postgres://admin:[REDACTED:email]S3cr3t(pw)@db.example.com:5432/app", "S3cr3t(pw)"),
    ],
)
def test_a_marker_written_into_a_secret_does_not_hide_it(
    protected: Gateway, text: str, secret: str
) -> None:
    protected.upstream.queue(Reply(text=text))
    response = post(protected)
    assert response.status_code == 502
    assert response.json()["error"] == "haechi_response_policy_block"
    assert secret not in response.text
    protected.upstream.queue(Reply(text="Customer [REDACTED:email] called"))
    echoed = post(protected)
    assert echoed.status_code == 200
    assert echoed.json()["choices"][0]["message"]["content"] == "Customer [REDACTED:email] called"


def test_clean_answer_is_relayed_unchanged_with_its_validators(protected: Gateway) -> None:
    body = b'{"choices": [{"message": {"content": "all good"}}],   "x": 1}'
    protected.upstream.queue(Reply(body=body, headers={"etag": '"v1"'}))
    response = post(protected)
    assert response.content == body
    assert response.headers["etag"] == '"v1"'


CARD = "4111 1111 1111 1111"


def test_a_key_named_twice_in_the_request_forwards_only_what_was_inspected(
    protected: Gateway,
) -> None:
    """json keeps the last of two same-named members; the earlier one, never inspected, must
    not reach the upstream in the client's own bytes."""
    hidden = json.dumps([{"role": "user", "content": f"card {CARD} mail {EMAIL}"}])
    body = f'{{"model":"m","messages":{hidden},"messages":[{{"role":"user","content":"hi"}}]}}'
    protected.upstream.queue(Reply(text="ok"))
    response = httpx.post(
        f"{protected.url}/v1/chat/completions",
        content=body.encode(),
        headers={"content-type": "application/json"},
        timeout=10,
    )
    assert response.status_code == 200
    sent = protected.upstream.last.body
    assert json.loads(sent) == chat("hi")
    assert b"4111" not in sent
    assert EMAIL.encode() not in sent


def test_a_key_named_twice_in_the_answer_is_sent_as_inspected(protected: Gateway) -> None:
    answer = {"choices": [{"message": {"content": "all good"}}]}
    hidden = json.dumps([{"message": {"content": f"card {CARD} mail {EMAIL}"}}])
    body = f'{{"choices":{hidden},"choices":{json.dumps(answer["choices"])}}}'.encode()
    protected.upstream.queue(Reply(body=body, headers={"etag": '"v1"'}))
    response = post(protected)
    assert response.status_code == 200
    assert response.json() == answer
    assert "4111" not in response.text
    assert EMAIL not in response.text
    assert "etag" not in response.headers


def test_changed_answer_drops_validators(protected: Gateway) -> None:
    body = json.dumps({"text": f"mail {EMAIL}"}).encode()
    validators = {
        "etag": '"v1"',
        "last-modified": "Wed, 21 Oct 2015 07:28:00 GMT",
        "content-md5": "x",
        "digest": "sha-256=x",
        "cache-control": "max-age=60",
    }
    protected.upstream.queue(Reply(body=body, headers=validators))
    response = post(protected)
    for name in ("etag", "last-modified", "content-md5", "digest"):
        assert name not in response.headers
    assert response.headers["cache-control"] == "no-store"


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        (
            Reply(body=b"plain text jane.doe@example.com", headers={"content-type": "text/plain"}),
            "non_json_response",
        ),
        (
            Reply(body=b"{broken jane.doe@example", headers={"content-type": "application/json"}),
            "invalid_json_response",
        ),
        (Reply(body=json.dumps({"t": EMAIL}).encode(), gzip=True), "compressed_response"),
        (
            Reply(
                body=json.dumps({"t": "jane.doe+AEA-example.com"}).encode(),
                headers={"content-type": "application/json; charset=utf-7"},
            ),
            "unsupported_charset",
        ),
    ],
)
def test_uninspectable_answers_fail_closed(protected: Gateway, reply: Reply, reason: str) -> None:
    protected.upstream.queue(reply)
    response = post(protected)
    assert response.status_code == 502
    document = response.json()
    assert document["error"] == "haechi_response_unprotected"
    assert document["reason"] == reason
    assert "jane" not in response.text
    assert "broken" not in response.text
    assert decisions(protected)[-1] == ("response_unprotected_blocked", reason)


def test_failure_mode_allow_relays_uninspectable_answers(tmp_path: Path) -> None:
    config = {"responseProtection": {"enabled": True, "failureMode": "allow"}}
    with gateway_in_front(tmp_path, config) as gateway:
        gateway.upstream.queue(Reply(body=b"plain", headers={"content-type": "text/plain"}))
        response = post(gateway)
        assert response.status_code == 200
        assert response.content == b"plain"
        assert decisions(gateway)[-1] == ("response_unprotected_allowed", "non_json_response")
        gateway.upstream.queue(Reply(body=b'{"a": 1}', gzip=True))
        response = httpx.post(f"{gateway.url}/v1/chat/completions", json=chat())
        # Relayed exactly as sent, so the encoding header still describes the bytes.
        assert response.headers["content-encoding"] == "gzip"
        assert response.json() == {"a": 1}
        utf7 = {"content-type": "application/json; charset=utf-7"}
        gateway.upstream.queue(Reply(body=b'{"a": "+AEA-"}', headers=utf7))
        response = post(gateway)
        assert response.status_code == 200
        assert response.content == b'{"a": "+AEA-"}'
        assert response.headers["content-type"] == utf7["content-type"]
        assert decisions(gateway)[-1] == ("response_unprotected_allowed", "unsupported_charset")


UTF7_ERROR = {
    "error": {
        "message": "no account for jane.doe+AEA-example.com",
        "type": "invalid_request_error",
    }
}


def test_an_answer_in_another_charset_never_reaches_the_client(protected: Gateway) -> None:
    """In UTF-7 ``+AEA-`` is ``@``: a client decoding the declared charset (the SDK builds
    its error message from the text) would read an address the gateway never saw."""
    protected.upstream.queue(
        Reply(
            status=400,
            body=json.dumps(UTF7_ERROR).encode(),
            headers={"content-type": "application/json; charset=utf-7"},
        )
    )
    client = openai.OpenAI(base_url=f"{protected.url}/v1", api_key="k", max_retries=0)
    with pytest.raises(openai.InternalServerError) as refused:
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    document = refused.value.response.json()
    assert document["error"] == "haechi_response_unprotected"
    assert document["reason"] == "unsupported_charset"
    assert "jane" not in str(refused.value)
    assert "jane" not in refused.value.response.text
    assert decisions(protected)[-1] == ("response_unprotected_blocked", "unsupported_charset")


@pytest.mark.parametrize(
    ("content_type", "other"),
    [
        ("application/json", False),
        ("application/json; charset=utf-8", False),
        ("application/json;charset=UTF-8", False),
        ('application/json; charset="utf8"', False),
        ("text/event-stream; Charset = Utf8", False),
        ("application/json; charset=utf-7", True),
        ('application/json; charset="UTF-16"', True),
        ("application/json; charset=iso-8859-1", True),
        ("application/json; charset=", True),
        ("application/json; charset=utf-8, application/json; charset=utf-7", True),
        ("application/json; charset*=utf-7", True),
    ],
)
def test_declared_charsets(content_type: str, other: bool) -> None:
    assert declares_other_charset(content_type) is other


def test_allow_non_json_relays_only_non_json(tmp_path: Path) -> None:
    config = {"responseProtection": {"enabled": True, "allowNonJson": True}}
    with gateway_in_front(tmp_path, config) as gateway:
        gateway.upstream.queue(Reply(body=b"plain", headers={"content-type": "text/plain"}))
        assert post(gateway).status_code == 200
        gateway.upstream.queue(Reply(body=b"{bad", headers={"content-type": "application/json"}))
        assert post(gateway).status_code == 502


def test_allow_compressed_decodes_and_inspects(tmp_path: Path) -> None:
    config = {"responseProtection": {"enabled": True, "allowCompressed": True}}
    with gateway_in_front(tmp_path, config) as gateway:
        gateway.upstream.queue(Reply(body=json.dumps({"t": f"mail {EMAIL}"}).encode(), gzip=True))
        response = post(gateway)
        assert response.status_code == 200
        assert "content-encoding" not in response.headers
        assert EMAIL not in response.text
        bomb = gzip.compress(b'{"t": "' + b"a" * 3_000_000 + b'"}')
        gateway.upstream.queue(Reply(body=bomb, headers={"content-encoding": "gzip"}))
        too_big = post(gateway)
        assert too_big.status_code == 502
        assert too_big.json()["reason"] == "response_body_too_large"


def test_oversize_protected_answer_is_refused_even_under_allow(tmp_path: Path) -> None:
    config = {"responseProtection": {"enabled": True, "failureMode": "allow", "maxBytes": 64}}
    with gateway_in_front(tmp_path, config) as gateway:
        gateway.upstream.queue(Reply(text="x" * 200))
        response = post(gateway)
        assert response.status_code == 502
        assert response.json()["reason"] == "response_body_too_large"
        assert decisions(gateway)[-1] == ("response_unprotected_blocked", "response_body_too_large")


def test_oversize_unprotected_answer_is_502_and_audited(tmp_path: Path) -> None:
    with gateway_in_front(tmp_path, {"responseProtection": {"maxBytes": 64}}) as gateway:
        gateway.upstream.queue(Reply(text="x" * 200))
        response = post(gateway)
        assert response.status_code == 502
        assert response.json()["error"] == "haechi_response_too_large"
        assert decisions(gateway)[-1] == ("response_unprotected_blocked", "response_body_too_large")


def test_unprotected_answers_are_relayed_byte_for_byte(tmp_path: Path) -> None:
    with gateway_in_front(tmp_path) as gateway:
        gateway.upstream.queue(
            Reply(body=f"raw {EMAIL}".encode(), status=418, headers={"content-type": "text/plain"})
        )
        response = post(gateway)
        assert response.status_code == 418
        assert response.text == f"raw {EMAIL}"
        # A compressed answer keeps its encoding and its bytes, and the length is theirs.
        body = json.dumps({"t": "plain"}).encode()
        gateway.upstream.queue(Reply(body=body, gzip=True))
        with httpx.stream("POST", f"{gateway.url}/v1/chat/completions", json=chat()) as relayed:
            raw = b"".join(relayed.iter_raw())
        assert relayed.headers["content-encoding"] == "gzip"
        assert int(relayed.headers["content-length"]) == len(raw)
        assert gzip.decompress(raw) == body


def test_numbers_in_answers_are_skipped_unless_asked(tmp_path: Path) -> None:
    card_number = 4111111111111111
    with gateway_in_front(tmp_path, PROTECTED) as gateway:
        gateway.upstream.queue(Reply(body=json.dumps({"n": card_number}).encode()))
        assert post(gateway).status_code == 200
    config = {"responseProtection": {"enabled": True, "scanNumbers": True}}
    with gateway_in_front(tmp_path / "scan", config) as gateway:
        gateway.upstream.queue(Reply(body=json.dumps({"n": card_number}).encode()))
        assert post(gateway).status_code == 502


def test_only_this_requests_tokens_are_restored(tmp_path: Path) -> None:
    config = {
        "policy": {"actions": {"email": "tokenize"}},
        "responseProtection": {"enabled": True},
        "tokenVault": {"detokenizeResponses": True},
    }
    with gateway_in_front(tmp_path, config) as gateway:
        first = post(gateway, chat(f"I am {EMAIL}"))
        assert first.status_code == 200
        seen = gateway.upstream.last.json()["messages"][0]["content"]
        assert EMAIL not in seen
        token = seen.removeprefix("I am ")
        assert token.startswith("[TOKEN:")
        # The echo brings the token back: the gateway restores it for this request.
        assert first.json()["choices"][0]["message"]["content"] == f"echo: I am {EMAIL}"
        # Another request echoing the same token gets no plaintext.
        gateway.upstream.queue(Reply(text=f"leak {token}"))
        second = post(gateway, chat("hello"))
        assert second.status_code == 200
        assert EMAIL not in second.text
        # One restore was audited, for the first request; the second issued no token, so
        # the vault was not asked to restore the foreign one at all.
        restores = [
            record for record in gateway.audit() if record["operation"] == "token-vault:detokenize"
        ]
        assert [(record["count"], record["reason"]) for record in restores] == [(1, None)]


# -- upstream failures -----------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_upstream_down_is_502(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{_free_port()}"
    with gateway_in_front(tmp_path, upstream_url=url) as gateway:
        response = post(gateway)
        assert response.status_code == 502
        assert response.json()["error"] == "haechi_upstream_unreachable"
        assert "haechi_upstream_error_total 1.0" in gateway.metrics(
            "haechi_upstream_error_total 1.0"
        )


def test_upstream_timeout_is_504(tmp_path: Path) -> None:
    with gateway_in_front(tmp_path, {"limits": {"upstreamTimeoutMs": 200}}) as gateway:
        gateway.upstream.queue(Reply(delay=2.0))
        response = post(gateway)
        assert response.status_code == 504
        assert response.json()["error"] == "haechi_upstream_timeout"
        assert "haechi_upstream_timeout_total 1.0" in gateway.metrics(
            "haechi_upstream_timeout_total 1.0"
        )


@pytest.mark.parametrize("status", [204, 304])
@pytest.mark.parametrize("protection", [True, False])
def test_an_answer_without_a_body_carries_no_content_length(
    tmp_path: Path, status: int, protection: bool
) -> None:
    config = {"responseProtection": {"enabled": protection}}
    with gateway_in_front(tmp_path, config) as gateway:
        gateway.upstream.queue(Reply(status=status, body=b""))
        host, port = gateway.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=5) as sock:
            body = json.dumps(chat()).encode()
            sock.sendall(
                b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n"
                b"content-type: application/json\r\ncontent-length: %d\r\n\r\n" % len(body) + body
            )
            received = b""
            while b"\r\n\r\n" not in received:
                received += sock.recv(65536)
    head = received.partition(b"\r\n\r\n")[0].lower()
    assert head.startswith(b"http/1.1 %d " % status)
    assert b"content-length" not in head
    assert b"transfer-encoding" not in head
