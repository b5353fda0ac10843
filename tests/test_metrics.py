# SPDX-License-Identifier: Apache-2.0
"""The Prometheus metrics sink: closed catalogue, label hygiene, per-instance registries."""

from __future__ import annotations

from haechi.metrics import DURATION_BUCKETS, METRIC_NAMES, PrometheusMetrics, sanitize_label_value
from haechi.providers import Metrics


def test_every_declared_metric_renders_even_without_samples() -> None:
    text, content_type = PrometheusMetrics().render()
    body = text.decode()
    assert content_type.startswith("text/plain; version=0.0.4")
    for name in METRIC_NAMES:
        assert f"# TYPE {name.removesuffix('_total')}" in body
    assert "haechi_response_stream_truncated_total 0.0" in body


def test_counters_and_histogram_render_samples() -> None:
    metrics = PrometheusMetrics()
    labels = {"route": "chat-completions", "mode": "enforce", "decision": "forwarded"}
    metrics.increment("haechi_requests_total", labels)
    metrics.increment("haechi_requests_total", labels, 2)
    metrics.increment("haechi_overloaded_total")
    metrics.observe("haechi_request_duration_seconds", 0.02, {"route": "chat-completions"})
    body = metrics.render()[0].decode()
    assert (
        'haechi_requests_total{decision="forwarded",mode="enforce",route="chat-completions"} 3.0'
        in body
    )
    assert "haechi_overloaded_total 1.0" in body
    assert 'haechi_request_duration_seconds_bucket{le="0.025",route="chat-completions"} 1.0' in body
    assert 'haechi_request_duration_seconds_bucket{le="0.01",route="chat-completions"} 0.0' in body
    assert 'le="+Inf"' in body
    assert DURATION_BUCKETS == (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def test_unknown_metrics_are_ignored() -> None:
    metrics = PrometheusMetrics()
    metrics.increment("attacker_controlled_metric_total")
    metrics.observe("another_one", 1.0)
    assert b"attacker_controlled" not in metrics.render()[0]


def test_label_values_cannot_carry_payload_text() -> None:
    metrics = PrometheusMetrics()
    secret = 'jane@example.com "}\nhaechi_fake 1 ' + "x" * 100
    labels = {"route": secret, "mode": None, "decision": "d"}
    metrics.increment("haechi_requests_total", labels)  # type: ignore[arg-type]
    body = metrics.render()[0].decode()
    assert "jane@example.com" not in body
    assert "haechi_fake 1" not in body
    assert 'mode="none"' in body
    assert sanitize_label_value(secret) == sanitize_label_value(secret)[:64]
    assert len(sanitize_label_value(secret)) == 64
    assert sanitize_label_value("chat-completions:v1/x.y_z") == "chat-completions:v1/x.y_z"


def test_unknown_label_names_are_dropped_and_missing_ones_are_none() -> None:
    metrics = PrometheusMetrics()
    metrics.increment("haechi_requests_total", {"route": "r", "identity": "tok_auth_1"})
    body = metrics.render()[0].decode()
    assert "tok_auth_1" not in body
    assert 'haechi_requests_total{decision="none",mode="none",route="r"} 1.0' in body


def test_instances_do_not_share_counters() -> None:
    first, second = PrometheusMetrics(), PrometheusMetrics()
    first.increment("haechi_blocks_total")
    assert b"haechi_blocks_total 1.0" in first.render()[0]
    assert b"haechi_blocks_total 0.0" in second.render()[0]


def test_is_the_registered_metrics_provider() -> None:
    from haechi.plugins.manager import load_registry

    assert isinstance(PrometheusMetrics(), Metrics)
    assert load_registry().select("metrics", "prometheus") is PrometheusMetrics


def test_label_values_equal_as_keys_stay_distinct_series() -> None:
    # 1, 1.0 and True are one dict key; each must still be counted under its own text.
    metrics = PrometheusMetrics()
    for value in (1, 1.0, True, "1", 1, "1"):
        labels: dict[str, object] = {"route": value, "mode": "m", "decision": "d"}
        metrics.increment("haechi_requests_total", labels)  # type: ignore[arg-type]
    body = metrics.render()[0].decode()
    series = {'route="1"}': 4.0, 'route="1.0"}': 1.0, 'route="True"}': 1.0}
    for suffix, count in series.items():
        assert f'haechi_requests_total{{decision="d",mode="m",{suffix} {count}' in body


def test_unhashable_label_values_are_counted_not_raised() -> None:
    metrics = PrometheusMetrics()
    labels: dict[str, object] = {"route": ["a", "b"]}
    for _ in range(2):
        metrics.observe("haechi_request_duration_seconds", 0.001, labels)  # type: ignore[arg-type]
    body = metrics.render()[0].decode()
    assert 'haechi_request_duration_seconds_count{route="__a____b__"} 2.0' in body
