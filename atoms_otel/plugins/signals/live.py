"""Live numbers for the dashboard and ``PerformanceMonitor``, computed from our own metrics.

No extra metric reader: each reading is a snapshot of the one Prometheus reader
(``Telemetry.metrics_snapshot()``, cumulative). A small ring keeps, per reading, the totals of
``http.requests`` (all, 5xx, and per status code) and the merged buckets of
``http.request.duration``; rates over a window are differences between the newest reading and the
newest one at least ``window`` old, and the short time series (request rate and error ratio per
interval) are differences between consecutive readings. Readings are taken whenever the dashboard
or ``PerformanceMonitor`` asks, and every 5 s while an app with the router serves.
Percentiles are estimated from histogram buckets by linear interpolation inside the bucket (what
Prometheus' ``histogram_quantile`` does), so they are only as precise as the bucket bounds.

Bounds: the ring keeps at most 1024 readings at least 1 s apart (older ones are dropped, and a
window longer than the ring reaches is answered over what it does reach — ``window_s`` in the
result says how long); each reading counts at most 32 distinct status codes (the first 32 seen
since the pipeline started; later ones are counted as ``other``); a time series has at most 300
points (readings closer than ``window / points`` are merged); the recent-errors ring keeps the
last 100 ``error.unhandled`` events.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final

from opentelemetry.sdk.metrics.export import HistogramDataPoint, Metric, MetricsData, NumberDataPoint

from atoms_otel.plugins.health.model import sanitize_message
from atoms_otel.plugins import Event

__all__ = [
    "LiveSignals",
    "RecentErrors",
    "RouteStats",
    "SeriesPoint",
    "ToolStats",
    "WindowStats",
    "active",
    "gauge_total",
    "iter_metrics",
    "percentile",
    "route_stats",
    "set_active",
    "tool_stats",
]

MAX_SAMPLES: Final = 1024
MIN_SPACING_S: Final = 1.0
MAX_RECENT_ERRORS: Final = 100
MAX_STATUS_CODES: Final = 32
MAX_SERIES_POINTS: Final = 300
SAMPLE_INTERVAL_S: Final = 5.0
OTHER_STATUS: Final = "other"


def iter_metrics(data: MetricsData | None) -> Iterator[Metric]:
    """Every metric in a snapshot, across resources and scopes."""
    if data is None:
        return
    for resource_metrics in data.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            yield from scope_metrics.metrics


def percentile(q: float, bounds: Sequence[float], counts: Sequence[float]) -> float | None:
    """The ``q`` quantile (0..1) of a histogram with explicit ``bounds`` and per-bucket ``counts``
    (one more count than bounds: the last is the +Inf bucket), by linear interpolation within the
    bucket. ``None`` without observations. In the +Inf bucket: the highest finite bound."""
    total = sum(counts)
    if total <= 0 or not bounds:
        return None
    rank = q * total
    cumulative = 0.0
    for index, count in enumerate(counts):
        if count <= 0:
            continue
        if cumulative + count >= rank:
            if index >= len(bounds):
                return float(bounds[-1])
            lower = float(bounds[index - 1]) if index > 0 else 0.0
            upper = float(bounds[index])
            return lower + (upper - lower) * max(rank - cumulative, 0.0) / count
        cumulative += count
    return float(bounds[-1])


@dataclass(frozen=True)
class _Sample:
    at: float
    requests: float
    errors: float
    bounds: tuple[float, ...]
    buckets: tuple[float, ...]
    statuses: tuple[float, ...] = ()  # cumulative per status code, in LiveSignals._codes order


@dataclass(frozen=True)
class WindowStats:
    """HTTP traffic over a window (``window_s`` is the span actually covered by readings)."""

    window_s: float
    requests: float
    errors: float
    request_rate: float
    error_rate: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    status_codes: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class SeriesPoint:
    """HTTP traffic in one interval of a time series, which ends ``seconds_ago`` before the newest
    reading and lasts ``interval_s``."""

    seconds_ago: float
    interval_s: float
    requests: float
    errors: float
    request_rate: float
    error_ratio: float


@dataclass(frozen=True)
class ToolStats:
    """One tool's calls since the pipeline started."""

    tool: str
    calls: float
    errors: float
    error_rate: float
    avg_duration_ms: float | None
    p95_ms: float | None


@dataclass(frozen=True)
class RouteStats:
    """One route's requests since the pipeline started (``route`` is the template)."""

    method: str
    route: str
    requests: float
    client_errors: float
    server_errors: float
    error_rate: float
    avg_duration_ms: float | None
    p95_ms: float | None


def _sample(data: MetricsData | None, at: float) -> tuple[_Sample, dict[str, float]]:
    """A reading, and its cumulative counts per status code (mapped to the ring's index later)."""
    requests = errors = 0.0
    by_status: dict[str, float] = {}
    bounds: tuple[float, ...] = ()
    buckets: list[float] = []
    for metric in iter_metrics(data):
        if metric.name == "http.requests":
            for point in metric.data.data_points:
                if isinstance(point, NumberDataPoint):
                    requests += point.value
                    status = str((point.attributes or {}).get("status", ""))
                    by_status[status] = by_status.get(status, 0.0) + point.value
                    if status.startswith("5"):
                        errors += point.value
        elif metric.name == "http.request.duration":
            for point in metric.data.data_points:
                if not isinstance(point, HistogramDataPoint):
                    continue
                if not bounds:
                    bounds, buckets = tuple(point.explicit_bounds), [0.0] * len(point.bucket_counts)
                if tuple(point.explicit_bounds) == bounds:
                    for i, count in enumerate(point.bucket_counts):
                        buckets[i] += count
    return _Sample(at, requests, errors, bounds, tuple(buckets)), by_status


class LiveSignals:
    """The ring of readings behind request rate, error rate and latency percentiles."""

    def __init__(self, *, max_samples: int = MAX_SAMPLES, min_spacing_s: float = MIN_SPACING_S) -> None:
        self._samples: deque[_Sample] = deque(maxlen=max_samples)
        self._min_spacing_s = min_spacing_s
        self._lock = threading.Lock()
        # Status codes get a slot the first time they are seen and keep it, so that the per-code
        # totals of any two readings line up; once full, new codes share the "other" slot.
        self._codes: dict[str, int] = {OTHER_STATUS: 0}
        # Counters are cumulative from the pipeline's start, which is when this is created.
        self._samples.append(_Sample(time.monotonic(), 0.0, 0.0, (), ()))

    def observe(self, data: MetricsData | None) -> _Sample:
        """Add a reading from a snapshot (kept if at least 1 s after the previous one)."""
        partial, by_status = _sample(data, time.monotonic())
        with self._lock:
            last = self._samples[-1]
            if partial.requests < last.requests:  # counters went back: a new pipeline; start over
                self._samples.clear()
                self._codes = {OTHER_STATUS: 0}
            sample = replace(partial, statuses=self._index_statuses(by_status))
            if not self._samples or sample.at - last.at >= self._min_spacing_s:
                self._samples.append(sample)
        return sample

    def _index_statuses(self, by_status: dict[str, float]) -> tuple[float, ...]:
        for code in sorted(by_status):
            if code not in self._codes and len(self._codes) <= MAX_STATUS_CODES:
                self._codes[code] = len(self._codes)
        counts = [0.0] * len(self._codes)
        for code, count in by_status.items():
            counts[self._codes.get(code, 0)] += count
        return tuple(counts)

    def window(self, window_s: float, newest: _Sample) -> WindowStats:
        """Traffic between ``newest`` and the newest stored reading at least ``window_s`` older."""
        with self._lock:
            samples = list(self._samples)
        start = newest.at - window_s
        base = samples[0]
        for sample in samples:
            if sample.at <= start:
                base = sample
            else:
                break
        span = max(newest.at - base.at, 0.0)
        requests = max(newest.requests - base.requests, 0.0)
        errors = max(newest.errors - base.errors, 0.0)
        counts: list[float] = list(newest.buckets)
        if base.bounds == newest.bounds and base.buckets:
            counts = [max(n - b, 0.0) for n, b in zip(newest.buckets, base.buckets, strict=True)]

        def ms(q: float) -> float | None:
            value = percentile(q, newest.bounds, counts)
            return None if value is None else round(value * 1000.0, 3)

        return WindowStats(
            window_s=round(span, 3),
            requests=requests,
            errors=errors,
            request_rate=round(requests / span, 6) if span > 0 else 0.0,
            error_rate=round(errors / requests, 6) if requests else 0.0,
            p50_ms=ms(0.50),
            p95_ms=ms(0.95),
            p99_ms=ms(0.99),
            status_codes=self._status_delta(base, newest),
        )

    def _status_delta(self, base: _Sample, newest: _Sample) -> dict[str, float]:
        with self._lock:
            codes = sorted(self._codes.items(), key=lambda item: item[1])
        delta: dict[str, float] = {}
        for code, slot in codes:
            now = newest.statuses[slot] if slot < len(newest.statuses) else 0.0
            then = base.statuses[slot] if slot < len(base.statuses) else 0.0
            if now - then > 0:
                delta[code] = now - then
        return dict(sorted(delta.items()))

    def series(
        self, window_s: float, newest: _Sample, max_points: int = MAX_SERIES_POINTS
    ) -> list[SeriesPoint]:
        """Request rate and error ratio per interval over the last ``window_s``, oldest first.

        Intervals run between stored readings at least ``window_s / max_points`` apart (closer
        ones are merged), the first one starting at the newest reading at least ``window_s`` old
        (or the oldest one kept, when the ring does not reach that far).
        """
        max_points = max(1, min(max_points, MAX_SERIES_POINTS))
        with self._lock:
            samples = [s for s in self._samples if s.at <= newest.at]
        if not samples:
            return []
        start = newest.at - window_s
        base = samples[0]
        for sample in samples:
            if sample.at > start:
                break
            base = sample
        later = [s for s in samples if s.at > base.at]
        if not later:
            return []
        step = window_s / max_points
        kept = [later[-1]]
        for sample in reversed(later[:-1]):
            if kept[-1].at - sample.at >= step:
                kept.append(sample)
        kept.append(base)
        kept.reverse()
        end = newest.at
        points = []
        for before, after in itertools.pairwise(kept):
            interval = after.at - before.at
            requests = max(after.requests - before.requests, 0.0)
            errors = max(after.errors - before.errors, 0.0)
            points.append(
                SeriesPoint(
                    seconds_ago=round(end - after.at, 3),
                    interval_s=round(interval, 3),
                    requests=requests,
                    errors=errors,
                    request_rate=round(requests / interval, 6) if interval > 0 else 0.0,
                    error_ratio=round(errors / requests, 6) if requests else 0.0,
                )
            )
        return points[-max_points:]


class _Latency:
    """Histogram points merged per group: sum, count and buckets (points with other bounds are skipped)."""

    def __init__(self) -> None:
        self.total = self.count = 0.0
        self.bounds: tuple[float, ...] | None = None
        self.buckets: list[float] = []

    def add(self, point: HistogramDataPoint) -> None:
        if self.bounds is None:
            self.bounds, self.buckets = tuple(point.explicit_bounds), [0.0] * len(point.bucket_counts)
        if tuple(point.explicit_bounds) != self.bounds:
            return
        self.buckets = [b + c for b, c in zip(self.buckets, point.bucket_counts, strict=True)]
        self.total += point.sum
        self.count += point.count

    def avg_ms(self) -> float | None:
        return round(self.total / self.count * 1000.0, 3) if self.count else None

    def p95_ms(self) -> float | None:
        p95 = percentile(0.95, self.bounds or (), self.buckets)
        return None if p95 is None else round(p95 * 1000.0, 3)


def tool_stats(data: MetricsData | None) -> list[ToolStats]:
    """Per-tool calls, errors and latency from ``tool.executions`` / ``tool.execution.duration``."""
    calls: dict[str, list[float]] = {}
    latency: dict[str, _Latency] = {}
    for metric in iter_metrics(data):
        if metric.name == "tool.executions":
            for point in metric.data.data_points:
                if isinstance(point, NumberDataPoint):
                    attributes = point.attributes or {}
                    entry = calls.setdefault(str(attributes.get("tool", "")), [0.0, 0.0])
                    entry[0] += point.value
                    if attributes.get("status") not in ("success", "ok"):
                        entry[1] += point.value
        elif metric.name == "tool.execution.duration":
            for point in metric.data.data_points:
                if isinstance(point, HistogramDataPoint):
                    latency.setdefault(str((point.attributes or {}).get("tool", "")), _Latency()).add(point)
    result = []
    for tool, (count, failed) in calls.items():
        timing = latency.get(tool, _Latency())
        result.append(
            ToolStats(
                tool=tool,
                calls=count,
                errors=failed,
                error_rate=round(failed / count, 6) if count else 0.0,
                avg_duration_ms=timing.avg_ms(),
                p95_ms=timing.p95_ms(),
            )
        )
    return result


def route_stats(data: MetricsData | None) -> list[RouteStats]:
    """Per method and route template: requests, 4xx, 5xx and latency since the pipeline started,
    from ``http.requests`` / ``http.request.duration``."""
    counts: dict[tuple[str, str], list[float]] = {}
    latency: dict[tuple[str, str], _Latency] = {}
    for metric in iter_metrics(data):
        if metric.name not in ("http.requests", "http.request.duration"):
            continue
        for point in metric.data.data_points:
            attributes = point.attributes or {}
            key = (str(attributes.get("method", "")), str(attributes.get("path", "")))
            if isinstance(point, NumberDataPoint):
                entry = counts.setdefault(key, [0.0, 0.0, 0.0])
                entry[0] += point.value
                status_class = str(attributes.get("status", ""))[:1]
                if status_class in ("4", "5"):
                    entry[1 if status_class == "4" else 2] += point.value
            elif isinstance(point, HistogramDataPoint):
                latency.setdefault(key, _Latency()).add(point)
    result = []
    for (method, route), (requests, client, server) in counts.items():
        timing = latency.get((method, route), _Latency())
        result.append(
            RouteStats(
                method=method,
                route=route,
                requests=requests,
                client_errors=client,
                server_errors=server,
                error_rate=round(server / requests, 6) if requests else 0.0,
                avg_duration_ms=timing.avg_ms(),
                p95_ms=timing.p95_ms(),
            )
        )
    return result


def gauge_total(data: MetricsData | None, name: str) -> float:
    """The sum of a gauge's (or up-down counter's) series, e.g. ``active_connections``."""
    return sum(
        point.value
        for metric in iter_metrics(data)
        if metric.name == name
        for point in metric.data.data_points
        if isinstance(point, NumberDataPoint)
    )


class RecentErrors:
    """The last 100 ``error.unhandled`` events, newest first on read."""

    def __init__(self, maxlen: int = MAX_RECENT_ERRORS) -> None:
        self._events: deque[dict[str, Any]] = deque(maxlen=maxlen)
        self._lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        data = event.data
        status = data.get("status_code")
        entry = {
            "timestamp": event.timestamp,
            "error_type": sanitize_message(data.get("error_type", ""))[:100],
            "method": sanitize_message(data.get("method", ""))[:16],
            "route": sanitize_message(data.get("route", "")),
            "status_code": status if isinstance(status, int) and not isinstance(status, bool) else None,
            "message": sanitize_message(event.message),
            "correlation_id": _short(event.correlation_id),
            "trace_id": _short(event.trace_id),
        }
        with self._lock:
            self._events.append(entry)

    def latest(self, limit: int) -> list[dict[str, Any]]:
        with self._lock:
            return list(reversed(self._events))[:limit]


def _short(value: object) -> str | None:
    return None if value is None else sanitize_message(value)[:64]


_active: tuple[LiveSignals, RecentErrors] | None = None


def set_active(signals: tuple[LiveSignals, RecentErrors] | None) -> None:
    """The health plugin installs its rings here at setup and removes them at shutdown."""
    global _active
    _active = signals


def active() -> tuple[LiveSignals, RecentErrors] | None:
    return _active
