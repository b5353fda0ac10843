# SPDX-License-Identifier: Apache-2.0
"""Fixture auth plugins (entry files signed at test time) and the helpers that sign them."""
