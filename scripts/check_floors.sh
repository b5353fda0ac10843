#!/usr/bin/env bash
# Install haechi with every core dependency at exactly its declared lower bound, then run the
# gateway's server tests with it.
#
# The gateway's server extends uvicorn's httptools protocol and leans on its internals, and
# the CLI, metrics and detection use APIs that older releases of typer, prometheus-client and
# python-stdnum lack: a bound in pyproject.toml is only true once this passes. pip resolves
# the packages nobody pins (click, h11, ...) to their newest releases, as it would for a user.
#
# Usage: scripts/check_floors.sh [pytest arguments]   (default: the server tests)
# The scratch environment goes to $FLOOR_VENV (default: a directory under $TMPDIR).
set -euo pipefail
cd "$(dirname "$0")/.."

venv="${FLOOR_VENV:-${TMPDIR:-/tmp}/haechi-floor-venv}"
rm -rf "$venv"
python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip

# Each "name>=version" of project.dependencies becomes "name==version" (markers kept). The
# test extra comes without mcp, whose releases need a newer uvicorn than the core does.
mapfile -t requirements < <("$venv/bin/python" - <<'EOF'
import re
import tomllib

with open("pyproject.toml", "rb") as file:
    project = tomllib.load(file)["project"]
for requirement in project["dependencies"]:
    print(re.sub(r">=", "==", requirement, count=1))
for requirement in project["optional-dependencies"]["test"]:
    if not requirement.startswith("mcp"):
        print(requirement)
EOF
)
"$venv/bin/python" -m pip install -q -e . "${requirements[@]}"

if (($# == 0)); then
  set -- tests/test_proxy_server.py tests/test_proxy_server_writes.py \
    tests/test_lifecycle_drain.py tests/test_lifecycle_tls.py tests/test_lifecycle_workers.py \
    tests/test_limitreview_pipelining.py tests/test_limitreview_drain.py \
    tests/test_proxy_write_timeout.py tests/test_proxy_request_bounds.py tests/test_proxy.py \
    tests/test_proxy_clients.py tests/test_proxy_connection_close.py tests/test_docs_cli.py
fi
"$venv/bin/python" -m pytest -q -p no:cacheprovider "$@"
