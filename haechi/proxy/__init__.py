# SPDX-License-Identifier: Apache-2.0
"""The HTTP gateway."""

__all__: list[str] = []
