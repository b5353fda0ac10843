# SPDX-License-Identifier: Apache-2.0
"""Detection: the rule catalogue, validators and the engine."""
