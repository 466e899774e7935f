"""Live HTTP numbers for the dashboard and ``PerformanceMonitor``, computed from our own metrics.

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
from typing import Final

from opentelemetry.sdk.metrics.export import HistogramDataPoint, Metric, MetricsData, NumberDataPoint

__all__ = [
    "LiveSignals",
    "SeriesPoint",
    "WindowStats",
    "iter_metrics",
    "percentile",
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
    reading and lasts ``interval_s``; its latency percentiles (``None`` without requests)."""

    seconds_ago: float
    interval_s: float
    requests: float
    errors: float
    request_rate: float
    error_ratio: float
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None


def _interval_percentiles(before: _Sample, after: _Sample) -> dict[str, float | None]:
    """p50/p95/p99 (ms) of the requests between two readings, from their bucket differences."""
    if not after.bounds or before.bounds not in ((), after.bounds):
        return {}
    base = before.buckets or (0.0,) * len(after.buckets)
    counts = [max(a - b, 0.0) for a, b in zip(after.buckets, base, strict=True)]
    result: dict[str, float | None] = {}
    for name, q in (("p50_ms", 0.50), ("p95_ms", 0.95), ("p99_ms", 0.99)):
        value = percentile(q, after.bounds, counts)
        result[name] = None if value is None else round(value * 1000.0, 3)
    return result


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
                    **_interval_percentiles(before, after),
                )
            )
        return points[-max_points:]
