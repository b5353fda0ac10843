# SPDX-License-Identifier: Apache-2.0
"""pytest plugin entry point of the haechi test kit."""
