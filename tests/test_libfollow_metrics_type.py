# SPDX-License-Identifier: Apache-2.0
"""``Runtime.metrics`` is typed as the metrics protocol, and is never ``None``.

The runtime always builds a sink (``metrics.provider``, ``prometheus`` by default); one
injected as ``None`` means the configured one. Code counting into it (the stream inspector,
the gateway) therefore needs no check for a missing sink, and a type checker sees the
methods it calls.
"""

from __future__ import annotations

import typing

import haechi.runtime
from haechi.metrics import PrometheusMetrics
from haechi.providers import Metrics
from haechi.runtime import Runtime, create_runtime


def test_metrics_is_typed_as_the_metrics_protocol() -> None:
    hints = typing.get_type_hints(Runtime.metrics.fget, vars(haechi.runtime))
    assert hints["return"] is Metrics


def test_metrics_injected_as_none_is_the_configured_sink() -> None:
    runtime = create_runtime({"audit": {"sink": "memory"}}, {"metrics": None, "token_vault": None})
    try:
        assert isinstance(runtime.metrics, PrometheusMetrics)
        assert runtime.metrics is runtime.metrics
    finally:
        runtime.close()
