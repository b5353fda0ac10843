# SPDX-License-Identifier: Apache-2.0
"""Prometheus metrics of the gateway, with a fixed catalogue and hygienic labels.

The catalogue is closed: only the metrics below exist, each with fixed label names, so no
caller can mint a series from request data. Label *values* are coerced to short tokens
(at most 64 characters of ``[A-Za-z0-9_.:/-]``, anything else becomes ``_``; ``None``
becomes ``none``), which keeps an inspected value or an identity from ever reaching the
exposition text. A metric name outside the catalogue is ignored rather than raised, because
counting must never break a request.

Every instance owns its :class:`prometheus_client.CollectorRegistry`, so two runtimes in one
process (tests, the demo) never share counters.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import ClassVar, Final, Self, TypeVar

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.multiprocess import MultiProcessCollector

from haechi.providers import ProviderContext

__all__ = [
    "DURATION_BUCKETS",
    "METRIC_NAMES",
    "PrometheusMetrics",
    "sanitize_label_value",
]

#: Buckets of ``haechi_request_duration_seconds``, in seconds.
DURATION_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

_COUNTERS: Final[dict[str, tuple[str, tuple[str, ...]]]] = {
    "haechi_requests_total": (
        "Requests handled, by route, mode and decision.",
        ("route", "mode", "decision"),
    ),
    "haechi_blocks_total": ("Requests or responses blocked by policy or protection.", ()),
    "haechi_auth_denied_total": ("Requests denied by authentication.", ()),
    "haechi_rate_limited_total": ("Requests denied by the rate limiter.", ()),
    "haechi_upstream_timeout_total": ("Upstream requests that timed out.", ()),
    "haechi_upstream_error_total": ("Upstream requests that failed to connect or read.", ()),
    "haechi_response_unprotected_total": ("Responses that could not be inspected.", ()),
    "haechi_response_stream_truncated_total": (
        "Streamed responses cut short (size cap or policy block).",
        (),
    ),
    "haechi_internal_error_total": ("Unexpected gateway errors.", ()),
    "haechi_overloaded_total": ("Requests refused by the in-flight ceiling.", ()),
}
_HISTOGRAMS: Final[dict[str, tuple[str, tuple[str, ...]]]] = {
    "haechi_request_duration_seconds": ("Request duration through the gateway.", ("route",)),
}

#: Every metric the gateway exposes.
METRIC_NAMES: Final = (*_COUNTERS, *_HISTOGRAMS)

_UNSAFE = re.compile(r"[^A-Za-z0-9_.:/-]")
_MAX_LABEL = 64
_CACHE_LIMIT = 4096

_Family = TypeVar("_Family", Counter, Histogram)


def sanitize_label_value(value: object) -> str:
    """Coerce ``value`` into a label value that cannot carry payload text."""
    if value is None:
        return "none"
    return _UNSAFE.sub("_", str(value)[:_MAX_LABEL])


class PrometheusMetrics:
    """The built-in metrics sink (``metrics.provider: "prometheus"``)."""

    name: ClassVar[str] = "prometheus"

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._counters = {
            metric: Counter(metric, doc, labels, registry=self.registry)
            for metric, (doc, labels) in _COUNTERS.items()
        }
        self._histograms = {
            metric: Histogram(metric, doc, labels, registry=self.registry, buckets=DURATION_BUCKETS)
            for metric, (doc, labels) in _HISTOGRAMS.items()
        }
        self._label_names = {
            metric: labels for metric, (_doc, labels) in (_COUNTERS | _HISTOGRAMS).items()
        }
        self._clean: dict[object, str] = {}
        # (metric, raw label strings) -> labelled child. ``labels()`` takes a lock and
        # rebuilds the label tuple on every call; the gateway counts every request with
        # the same few label combinations (route, mode, decision: no request data).
        self._children: dict[tuple[str, tuple[object, ...]], Counter | Histogram] = {}

    @classmethod
    def create(cls, context: ProviderContext) -> Self:
        """Build an empty sink; the configuration has nothing to tune here."""
        return cls()

    def _label_values(self, metric: str, labels: Mapping[str, object] | None) -> tuple[str, ...]:
        given = labels or {}
        values = []
        for label in self._label_names[metric]:
            raw = given.get(label)
            clean = self._clean.get(raw) if isinstance(raw, str | None) else None
            if clean is None:
                clean = sanitize_label_value(raw)
                if isinstance(raw, str) and len(self._clean) < _CACHE_LIMIT:
                    self._clean[raw] = clean
            values.append(clean)
        return tuple(values)

    def _child(self, metric: str, family: _Family, labels: Mapping[str, object] | None) -> _Family:
        """The series of ``family`` for ``labels`` (the family itself when it has none)."""
        names = self._label_names[metric]
        if not names:
            return family
        raw = tuple(map((labels or {}).get, names))
        key = (metric, raw)
        try:
            child = self._children.get(key)
        except TypeError:  # an unhashable label value: sanitized below, never remembered
            child = None
        if child is None:
            child = family.labels(*self._label_values(metric, labels))
            # Only all-text label sets are remembered: 1, 1.0 and True are one dict key but
            # three different label values.
            if len(self._children) < _CACHE_LIMIT and all(type(value) is str for value in raw):
                self._children[key] = child
        return child  # type: ignore[return-value]

    def increment(
        self, metric: str, labels: Mapping[str, str] | None = None, amount: float = 1
    ) -> None:
        """Add ``amount`` to a catalogue counter; other names are ignored, and so is a count
        that cannot be stored (see :meth:`_series`)."""
        counter = self._counters.get(metric)
        series = self._series(metric, counter, labels) if counter is not None else None
        if series is not None:
            series.inc(amount)

    def observe(self, metric: str, value: float, labels: Mapping[str, str] | None = None) -> None:
        """Record one observation of a catalogue histogram; other names are ignored, and so
        is an observation that cannot be stored (see :meth:`_series`)."""
        histogram = self._histograms.get(metric)
        series = self._series(metric, histogram, labels) if histogram is not None else None
        if series is not None:
            series.observe(value)

    def _series(
        self, metric: str, family: _Family, labels: Mapping[str, object] | None
    ) -> _Family | None:
        """:meth:`_child`, or ``None`` when it cannot be made. In multi-worker mode a new
        series opens its worker's file for its kind of metric, which fails once the
        directory is gone (a temporary-file cleaner): the sample is dropped, since counting
        must never break a request, and the exposition reports the failure."""
        try:
            return self._child(metric, family, labels)
        except OSError:
            return None

    def render(self) -> tuple[bytes, str]:
        """The Prometheus text exposition and its content type.

        In a multi-worker gateway (``prometheus-client`` multi-process mode, see
        :mod:`haechi.proxy.workers`) the exposition sums the counters of every worker.
        """
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            combined = CollectorRegistry()
            MultiProcessCollector(combined)  # type: ignore[no-untyped-call]
            return generate_latest(combined), CONTENT_TYPE_PLAIN_0_0_4
        return generate_latest(self.registry), CONTENT_TYPE_PLAIN_0_0_4
