"""The sliding window and percentile estimates behind the dashboard and PerformanceMonitor."""

from __future__ import annotations

import time

import pytest

import atoms_otel
from atoms_otel.base.events import Event
from atoms_otel.plugins.signals import live as live_signals
from atoms_otel.plugins.signals.live import LiveSignals, percentile
from atoms_otel.plugins.signals.plugin import RecentErrors
from atoms_otel.plugins.signals.stats import route_stats
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


class _Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> _Clock:
    fake = _Clock()
    monkeypatch.setattr(live_signals, "time", fake)
    return fake


def _requests(count: int, status: int = 200, path: str = "/a", method: str = "GET") -> None:
    for _ in range(count):
        atoms_otel.record_http_request(method, path, status, 0.05)


def test_series_gives_rate_and_error_ratio_per_interval(
    capture_telemetry: CapturedTelemetry, clock: _Clock
) -> None:
    """Each point is the traffic between two readings: requests/s, the share of 5xx and the latency
    percentiles of that interval's requests (all 50 ms: inside the 25-50 ms bucket)."""
    signals = LiveSignals()
    clock.now += 10
    _requests(15)
    _requests(5, 500)
    signals.observe(_snapshot(capture_telemetry))  # type: ignore[arg-type]
    clock.now += 10
    _requests(10)
    newest = signals.observe(_snapshot(capture_telemetry))  # type: ignore[arg-type]
    points = [vars(p) for p in signals.series(60, newest)]
    assert points == [
        {
            "seconds_ago": 10.0,
            "interval_s": 10.0,
            "requests": 20.0,
            "errors": 5.0,
            "request_rate": 2.0,
            "error_ratio": 0.25,
            "p50_ms": 37.5,
            "p95_ms": 48.75,
            "p99_ms": 49.75,
        },
        {
            "seconds_ago": 0.0,
            "interval_s": 10.0,
            "requests": 10.0,
            "errors": 0.0,
            "request_rate": 1.0,
            "error_ratio": 0.0,
            "p50_ms": 37.5,
            "p95_ms": 48.75,
            "p99_ms": 49.75,
        },
    ]


def test_series_latency_is_per_interval(capture_telemetry: CapturedTelemetry, clock: _Clock) -> None:
    """A slow interval shows its own percentiles, not the whole window's; an idle one has none."""
    signals = LiveSignals()
    clock.now += 10
    _requests(10)
    signals.observe(_snapshot(capture_telemetry))  # type: ignore[arg-type]
    clock.now += 10
    for _ in range(10):
        atoms_otel.record_http_request("GET", "/a", 200, 2.0)
    signals.observe(_snapshot(capture_telemetry))  # type: ignore[arg-type]
    clock.now += 10
    newest = signals.observe(_snapshot(capture_telemetry))  # type: ignore[arg-type]
    fast, slow, idle = signals.series(60, newest)
    assert fast.p99_ms is not None and fast.p99_ms <= 50
    assert slow.p50_ms is not None and slow.p50_ms > 1000
    assert (idle.p50_ms, idle.p95_ms, idle.p99_ms) == (None, None, None)


def test_series_starts_at_the_window(capture_telemetry: CapturedTelemetry, clock: _Clock) -> None:
    """Only intervals inside the window: the first starts at the newest reading that old."""
    signals = LiveSignals()
    newest = None
    for _ in range(10):
        clock.now += 10
        _requests(1)
        newest = signals.observe(_snapshot(capture_telemetry))  # type: ignore[arg-type]
    assert newest is not None
    points = signals.series(30, newest)
    assert [p.seconds_ago for p in points] == [20.0, 10.0, 0.0]
    assert sum(p.requests for p in points) == 3.0


def test_series_merges_readings_closer_than_its_step(
    capture_telemetry: CapturedTelemetry, clock: _Clock
) -> None:
    """100 readings a second apart become at most max_points intervals, losing no request."""
    signals = LiveSignals()
    newest = None
    for _ in range(100):
        clock.now += 1
        _requests(2)
        newest = signals.observe(_snapshot(capture_telemetry))  # type: ignore[arg-type]
    assert newest is not None
    points = signals.series(100, newest, max_points=10)
    assert len(points) <= 10
    assert all(p.interval_s >= 10 for p in points[1:])
    assert sum(p.requests for p in points) == 200.0


def test_window_counts_responses_per_status_code(capture_telemetry: CapturedTelemetry) -> None:
    """The status-code breakdown covers only the window: codes before its base reading are left out."""
    signals = LiveSignals(min_spacing_s=0.0)
    _requests(4, 503)
    signals.observe(_snapshot(capture_telemetry))  # type: ignore[arg-type]
    time.sleep(0.3)
    _requests(3)
    _requests(2, 404)
    _requests(1, 500)
    newest = signals.observe(_snapshot(capture_telemetry))  # type: ignore[arg-type]
    assert signals.window(0.2, newest).status_codes == {"200": 3.0, "404": 2.0, "500": 1.0}
    assert signals.window(60, newest).status_codes == {"200": 3.0, "404": 2.0, "500": 1.0, "503": 4.0}


def test_status_codes_beyond_the_limit_count_as_other(capture_telemetry: CapturedTelemetry) -> None:
    """At most 32 distinct codes are kept per ring; later ones share the "other" slot."""
    signals = LiveSignals(min_spacing_s=0.0)
    for code in range(200, 240):
        _requests(1, code)
    newest = signals.observe(_snapshot(capture_telemetry))  # type: ignore[arg-type]
    codes = signals.window(60, newest).status_codes
    assert len(codes) == 33
    assert codes["other"] == 8.0
    assert sum(codes.values()) == 40.0
    assert len(newest.statuses) == 33


def test_route_stats_per_method_and_template(capture_telemetry: CapturedTelemetry) -> None:
    """Requests, 4xx, 5xx and latency per method and route template."""
    _requests(3, 200, "/items/{id}")
    _requests(1, 404, "/items/{id}")
    _requests(1, 500, "/items/{id}")
    _requests(2, 201, "/items/{id}", "POST")
    routes = {(r.method, r.route): r for r in route_stats(_snapshot(capture_telemetry))}  # type: ignore[arg-type]
    get = routes[("GET", "/items/{id}")]
    assert (get.requests, get.client_errors, get.server_errors, get.error_rate) == (5.0, 1.0, 1.0, 0.2)
    assert get.avg_duration_ms == pytest.approx(50.0)
    assert get.p95_ms is not None and 25.0 <= get.p95_ms <= 75.0
    assert (routes[("POST", "/items/{id}")].requests, len(routes)) == (2.0, 2)
