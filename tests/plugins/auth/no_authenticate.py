# SPDX-License-Identifier: Apache-2.0
"""An entry without an authenticate function: loading must fail."""

VERIFY = None
