# SPDX-License-Identifier: Apache-2.0
"""``python -m haechi`` runs the CLI."""

from haechi.cli import main

raise SystemExit(main())
