# SPDX-License-Identifier: Apache-2.0
"""CLI commands (being written)."""
