# SPDX-License-Identifier: Apache-2.0
"""Protected values handed to the command line never come back out of it.

Each test runs ``haechi`` as a user does (a real subprocess) with an e-mail address, an API
key or a gateway bearer token where an operator could put it by mistake — an argument, an
option, the upstream URL of the configuration — and checks stdout and stderr for it.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli import json_output, run_haechi

EMAIL = "jane.doe@example.com"
API_KEY = "sk_live_4eC39HqLyjWDarjtT1zdp7dc"


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
