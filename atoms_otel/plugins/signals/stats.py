"""Per-tool and per-route statistics since the pipeline started, from a metrics snapshot."""

from __future__ import annotations

from dataclasses import dataclass

from opentelemetry.sdk.metrics.export import HistogramDataPoint, MetricsData, NumberDataPoint

from atoms_otel.plugins.signals.live import iter_metrics, percentile

__all__ = ["RouteStats", "ToolStats", "gauge_total", "route_stats", "tool_stats"]


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
