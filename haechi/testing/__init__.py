# SPDX-License-Identifier: Apache-2.0
"""Public test kit: contract suites any provider implementation can subclass.

Each suite asks for one fixture that returns a fresh, empty provider; everything else is
inherited. The built-in providers run these same suites in haechi's own tests.
"""
