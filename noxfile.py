# SPDX-License-Identifier: Apache-2.0
"""Automation entry point: ``nox -l`` lists the sessions.

Satellites are discovered on disk (``satellites/*/pyproject.toml``), one session each, so
adding a satellite directory adds its session without editing this file.
"""

from __future__ import annotations

from pathlib import Path

import nox

nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True

ROOT = Path(__file__).parent
SATELLITES: list[str] = sorted(p.parent.name for p in ROOT.glob("satellites/*/pyproject.toml"))
SHORT_NAMES: list[str] = [name.removeprefix("haechi-") for name in SATELLITES]


@nox.session
def lint(session: nox.Session) -> None:
    """Run ruff over the whole repository."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """Type-check haechi and this noxfile with mypy --strict."""
    session.install("-e", ".[test,dev]")
    session.run("mypy")


@nox.session
def tests(session: nox.Session) -> None:
    """Run the core test suite."""
    session.install("-e", ".[test]")
    session.run("pytest", *(session.posargs or ["-q"]))


@nox.session
@nox.parametrize("satellite", SATELLITES, ids=SHORT_NAMES)
def satellite(session: nox.Session, satellite: str) -> None:
    """Install core and one satellite, then run the satellite's own tests."""
    session.install("-e", ".[test]")
    session.install("-e", f"satellites/{satellite}[test]")
    session.run("pytest", f"satellites/{satellite}/tests", *session.posargs)
