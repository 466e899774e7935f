"""The sliding window and percentile estimates behind the dashboard and PerformanceMonitor."""

from __future__ import annotations

import time

import pytest

import atoms_otel
from atoms_otel.live_signals import LiveSignals, RecentErrors, percentile
from atoms_otel.plugins import Event
from atoms_otel.testing import CapturedTelemetry


def _snapshot(capture: CapturedTelemetry) -> object:
    assert capture.telemetry is not None
    return capture.telemetry.metrics_snapshot()


def test_window_counts_only_requests_after_its_base_reading(capture_telemetry: CapturedTelemetry) -> None:
    """A short window starts at the newest reading old enough; a long one reaches the baseline."""
    signals = LiveSignals(min_spacing_s=0.0)
    atoms_otel.record_http_request("GET", "/a", 200, 0.01)
    signals.observe(_snapshot(capture_telemetry))  # type: ignore[arg-type]
    time.sleep(0.3)
    atoms_otel.record_http_request("GET", "/a", 500, 0.01)
    atoms_otel.record_http_request("GET", "/a", 200, 0.01)
    newest = signals.observe(_snapshot(capture_telemetry))  # type: ignore[arg-type]
    short, long = signals.window(0.2, newest), signals.window(60, newest)
    assert (short.requests, short.errors, short.error_rate) == (2.0, 1.0, 0.5)
    assert (long.requests, long.errors) == (3.0, 1.0)
    assert 0.25 <= short.window_s <= long.window_s


def test_readings_closer_than_the_spacing_are_not_stored(capture_telemetry: CapturedTelemetry) -> None:
    """The ring keeps readings at least min_spacing_s apart, so it stays small under load."""
    signals = LiveSignals(min_spacing_s=60.0)
    for _ in range(50):
        signals.observe(_snapshot(capture_telemetry))  # type: ignore[arg-type]
    assert len(signals._samples) == 1


def test_ring_is_bounded(capture_telemetry: CapturedTelemetry) -> None:
    """At most max_samples readings are kept; the oldest go first."""
    signals = LiveSignals(max_samples=5, min_spacing_s=0.0)
    for _ in range(20):
        signals.observe(_snapshot(capture_telemetry))  # type: ignore[arg-type]
    assert len(signals._samples) == 5


def test_counter_reset_starts_the_window_over(capture_telemetry: CapturedTelemetry) -> None:
    """When counters go back (a new pipeline), old readings are dropped instead of giving negatives."""
    signals = LiveSignals(min_spacing_s=0.0)
    for _ in range(3):
        atoms_otel.record_http_request("GET", "/a", 200, 0.01)
    signals.observe(_snapshot(capture_telemetry))  # type: ignore[arg-type]
    capture_telemetry.reconfigure()
    atoms_otel.record_http_request("GET", "/a", 200, 0.01)
    newest = signals.observe(_snapshot(capture_telemetry))  # type: ignore[arg-type]
    assert signals.window(60, newest).requests == 0.0
    assert len(signals._samples) == 1


@pytest.mark.parametrize(
    ("q", "counts", "expected"),
    [
        (0.5, [0, 10, 0, 0], 1.5),
        (0.25, [10, 10, 0, 0], 0.5),
        (0.95, [0, 0, 0, 10], 4.0),
        (1.0, [0, 0, 10, 0], 4.0),
    ],
    ids=["middle-of-bucket", "first-bucket-from-zero", "inf-bucket", "top-of-bucket"],
)
def test_percentile_interpolates_within_the_bucket(q: float, counts: list[int], expected: float) -> None:
    """Linear interpolation inside the bucket holding the rank; +Inf reports the highest bound."""
    assert percentile(q, (1.0, 2.0, 4.0), counts) == pytest.approx(expected)


def test_percentile_without_observations_is_none() -> None:
    """No traffic: no percentile rather than a made-up zero."""
    assert percentile(0.95, (1.0, 2.0), [0, 0, 0]) is None


def test_recent_errors_keep_only_the_newest_and_sanitize() -> None:
    """The ring drops the oldest entries and never stores secrets or odd types."""
    recent = RecentErrors(maxlen=3)
    for i in range(5):
        recent(
            Event(kind="error.unhandled", message=f"boom {i} password=hunter2", data={"status_code": "500"})
        )
    latest = recent.latest(10)
    assert [e["message"] for e in latest] == [
        "boom 4 password=[REDACTED]",
        "boom 3 password=[REDACTED]",
        "boom 2 password=[REDACTED]",
    ]
    assert latest[0]["status_code"] is None
