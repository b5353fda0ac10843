# SPDX-License-Identifier: Apache-2.0
"""Plugin discovery, provider selection, and the signed auth-plugin trust gate."""

__all__: list[str] = []
