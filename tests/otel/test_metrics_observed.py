"""Counters and gauges with observed=True: kept in-process, read when metrics are collected."""

from __future__ import annotations

import threading

import pytest

import atoms_otel
from atoms_otel import Counter, Gauge, get_metrics_registry
from atoms_otel.otel.metrics import instruments
from atoms_otel.testing import CapturedTelemetry


def test_observed_counter_counts_per_label_set(capture_telemetry: CapturedTelemetry) -> None:
    """inc() adds per label set and the totals appear as a Prometheus counter."""
    hits = Counter("page_hits", "Page hits", labels=("page",), observed=True)
    hits.inc(labels={"page": "home"})
    hits.inc(2, labels={"page": "home"})
    hits.inc(labels={"page": "about"})
    assert capture_telemetry.metric_value("page_hits", page="home") == 3
    text = capture_telemetry.prometheus_text()
    assert "# TYPE page_hits_total counter" in text and 'page_hits_total{page="about"} 1.0' in text


def test_observed_counter_is_exact_across_threads(capture_telemetry: CapturedTelemetry) -> None:
    """Concurrent increments from many threads are all counted."""
    jobs = Counter("jobs_done", "Jobs", labels=("queue",), observed=True)

    def work() -> None:
        for _ in range(1000):
            jobs.inc(labels={"queue": "q"})

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert capture_telemetry.metric_value("jobs_done", queue="q") == 8000


def test_observed_counter_folds_label_sets_past_its_bound(
    capture_telemetry: CapturedTelemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the bound, new label sets are counted in one otel_metric_overflow series."""
    monkeypatch.setattr(instruments, "_MAX_OBSERVED_SERIES", 3)
    ids = Counter("by_id", "Per id", labels=("id",), observed=True)
    for n in range(10):
        ids.inc(labels={"id": str(n)})
    assert capture_telemetry.metric_value("by_id", otel_metric_overflow="true") == 7
    assert capture_telemetry.metric_value("by_id") == 10


def test_observed_counter_starts_over_with_a_new_pipeline(capture_telemetry: CapturedTelemetry) -> None:
    """Like the SDK's counters, a new configure() starts it from zero (ratios between counters hold)."""
    calls = Counter("calls_seen", "Calls", observed=True)
    calls.inc(4)
    capture_telemetry.reconfigure(service_name="again")
    calls.inc()
    assert capture_telemetry.metric_value("calls_seen") == 1


def test_observed_gauge_is_read_at_collection(capture_telemetry: CapturedTelemetry) -> None:
    """inc/dec/set only change the in-process value; the collector sees the current one."""
    depth = Gauge("observed_depth", "Depth", observed=True)
    depth.set(10)
    depth.dec(3)
    assert capture_telemetry.metric_value("observed_depth") == 7
    depth.inc()
    assert capture_telemetry.metric_value("observed_depth") == 8


def test_request_metrics_helpers_record_into_observed_counter(capture_telemetry: CapturedTelemetry) -> None:
    """record_http_request() still feeds http_requests_total (now observed) and the histogram."""
    atoms_otel.record_http_request("POST", "/api/users", 201, 0.345)
    assert (
        capture_telemetry.metric_value("http_requests_total", method="POST", path="/api/users", status="201")
        == 1
    )
    assert capture_telemetry.metric_value("http_request_duration_seconds", path="/api/users") == 1
    assert get_metrics_registry().http_requests_total.prometheus_name == "http_requests_total"
