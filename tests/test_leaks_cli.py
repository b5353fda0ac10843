# SPDX-License-Identifier: Apache-2.0
"""Protected values handed to the command line never come back out of it.

Each test runs ``haechi`` as a user does (a real subprocess) with an e-mail address, an API
key or a gateway bearer token where an operator could put it by mistake — an argument, an
option, the upstream URL of the configuration — and checks stdout and stderr for it.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.cli import json_output, run_haechi

EMAIL = "jane.doe@example.com"
API_KEY = "sk_live_4eC39HqLyjWDarjtT1zdp7dc"
GATEWAY_TOKEN = "hae_" + "Q" * 43


def _printed(result: subprocess.CompletedProcess[str]) -> str:
    return result.stdout + result.stderr


def test_status_never_prints_credentials_or_query_of_the_upstream(tmp_path: Path) -> None:
    upstream = f"https://admin:{API_KEY}@llm.internal:8443/v1?api_key={API_KEY}&user={EMAIL}#x"
    (tmp_path / "haechi.config.json").write_text(json.dumps({"target": {"upstream": upstream}}))
    status = json_output(run_haechi("status", cwd=tmp_path))
    assert status["target"]["upstream"] == "https://llm.internal:8443/v1"
    text = json.dumps(status)
    assert API_KEY not in text
    assert "admin" not in text
    assert EMAIL not in text


def test_status_never_prints_credentials_of_an_upstream_from_the_environment(
    tmp_path: Path,
) -> None:
    upstream = f"http://user:{API_KEY}@[::1]:8000/prefix"
    status = json_output(run_haechi("status", cwd=tmp_path, env={"HAECHI_UPSTREAM": upstream}))
    assert status["target"]["upstream"] == "http://[::1]:8000/prefix"
    assert API_KEY not in json.dumps(status)


@pytest.mark.parametrize("argument", [GATEWAY_TOKEN, API_KEY, EMAIL])
def test_token_revoke_of_an_unknown_argument_never_echoes_it(tmp_path: Path, argument: str) -> None:
    # Pasting the token (or anything else) where its id belongs is refused without
    # printing what was pasted: stderr ends up in terminals, CI logs and tickets.
    json_output(run_haechi("init", cwd=tmp_path))
    result = run_haechi("token-revoke", argument, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith("haechi: unknown token id")
    assert len(result.stderr.splitlines()) == 1
    assert argument not in _printed(result)


def test_token_revoke_of_an_unknown_id_names_the_id(tmp_path: Path) -> None:
    json_output(run_haechi("init", cwd=tmp_path))
    result = run_haechi("token-revoke", "tok_auth_0123abcd", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr == "haechi: unknown token id: tok_auth_0123abcd\n"


@pytest.mark.parametrize(
    "label",
    [EMAIL, f"{EMAIL}=x", f"{API_KEY}=x", f"={API_KEY}", f"team:{API_KEY}"],
)
def test_token_add_refuses_a_bad_label_without_echoing_it(tmp_path: Path, label: str) -> None:
    json_output(run_haechi("init", cwd=tmp_path))
    result = run_haechi("token-add", "--type", "user", "--label", label, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith("haechi: ")
    assert "label" in result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert EMAIL not in result.stderr
    assert API_KEY not in result.stderr
    assert not (tmp_path / ".haechi" / "auth.json").exists()


@pytest.mark.parametrize("argument", [EMAIL, API_KEY])
def test_token_purge_of_a_non_token_never_echoes_it(tmp_path: Path, argument: str) -> None:
    # The vault records such an argument as a keyed hash in the audit log; the command's
    # own answer must not print it back either.
    json_output(run_haechi("init", cwd=tmp_path))
    result = run_haechi("token-purge", argument, cwd=tmp_path)
    document = json_output(result)
    assert document["result"]["purged"] is False
    assert argument not in _printed(result)
    assert argument not in (tmp_path / ".haechi" / "audit.jsonl").read_text()


def test_token_list_and_revoke_never_print_a_token_or_its_hash(tmp_path: Path) -> None:
    json_output(run_haechi("init", cwd=tmp_path))
    added = json_output(run_haechi("token-add", "--type", "agent", cwd=tmp_path))
    stored = json.loads((tmp_path / ".haechi" / "auth.json").read_text())["tokens"][0]
    for result in (
        run_haechi("token-list", cwd=tmp_path),
        run_haechi("token-revoke", added["id"], cwd=tmp_path),
        run_haechi("token-revoke", added["id"], cwd=tmp_path),
        run_haechi("status", cwd=tmp_path),
    ):
        assert result.returncode == 0, result.stderr
        assert added["token"] not in _printed(result)
        assert stored["tokenHash"] not in _printed(result)


def test_protect_refuses_a_lone_surrogate_before_auditing_anything(tmp_path: Path) -> None:
    # Such a string cannot be written as UTF-8: refused as input, like the gateway does,
    # rather than protected, audited and then failing as an internal error on output.
    json_output(run_haechi("init", cwd=tmp_path))
    document = '{"a": "' + EMAIL + '\\ud800"}'
    result = run_haechi("protect", "--mode", "enforce", "-", cwd=tmp_path, stdin=document)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith("haechi: ")
    assert "surrogate" in result.stderr
    assert "internal error" not in result.stderr
    assert EMAIL not in _printed(result)
    assert not (tmp_path / ".haechi" / "audit.jsonl").exists()


@pytest.mark.parametrize("number", ["NaN", "Infinity", "1e400"])
def test_protect_refuses_numbers_json_cannot_write(tmp_path: Path, number: str) -> None:
    """Read as the gateway reads a body: such a number would be printed back as the
    non-JSON ``NaN`` or ``Infinity``."""
    json_output(run_haechi("init", cwd=tmp_path))
    document = '{"a": "' + EMAIL + '", "n": ' + number + "}"
    result = run_haechi("protect", "--mode", "enforce", "-", cwd=tmp_path, stdin=document)
    assert result.returncode == 1
    assert result.stdout == ""
    assert "not valid JSON" in result.stderr
    assert EMAIL not in _printed(result)
    assert not (tmp_path / ".haechi" / "audit.jsonl").exists()
