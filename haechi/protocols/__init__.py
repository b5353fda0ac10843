# SPDX-License-Identifier: Apache-2.0
"""Protocol adapters: route classification and streaming descriptors."""
