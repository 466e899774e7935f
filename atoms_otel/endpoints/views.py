"""Build the endpoints' response models from health reports and metric snapshots (pure functions)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Final, Literal

from opentelemetry.sdk.metrics.export import (
    ExponentialHistogram,
    Histogram,
    HistogramDataPoint,
    Metric,
    MetricsData,
    NumberDataPoint,
    Sum,
)

from atoms_otel.endpoints.models import (
    BucketModel,
    ComponentHealthModel,
    DashboardResponse,
    HealthCheckResponse,
    HealthJsonCheck,
    HealthJsonResponse,
    HealthSummary,
    LatencyModel,
    MetricDataPoint,
    MetricModel,
    RecentErrorModel,
    RequestStatsModel,
    RouteStatsModel,
    SeriesPointModel,
    ToolStatsModel,
)
from atoms_otel.otel.metrics import prometheus_name
from atoms_otel.plugins.health import ComponentType, HealthReport, HealthStatus
from atoms_otel.plugins.signals.live import iter_metrics
from atoms_otel.plugins.signals.plugin import LiveSignalsPlugin
from atoms_otel.plugins.signals.stats import gauge_total, route_stats, tool_stats

__all__ = [
    "ServiceInfo",
    "dashboard",
    "find_metric",
    "health_json",
    "health_response",
    "metric_models",
    "now",
]

_IETF_STATUS: Final[dict[HealthStatus, Literal["pass", "warn", "fail"]]] = {
    HealthStatus.HEALTHY: "pass",
    HealthStatus.DEGRADED: "warn",
    HealthStatus.UNKNOWN: "warn",
    HealthStatus.UNHEALTHY: "fail",
}
_IETF_TYPE: Final = {
    ComponentType.DATABASE: "datastore",
    ComponentType.CACHE: "datastore",
    ComponentType.STORAGE: "datastore",
    ComponentType.QUEUE: "system",
}


class ServiceInfo:
    """Who is answering: from the active settings, or neutral defaults before configure()."""

    def __init__(self, name: str, version: str, environment: str, uptime_seconds: float) -> None:
        self.name, self.version, self.environment = name, version, environment
        self.uptime_seconds = round(uptime_seconds, 3)


def now() -> datetime:
    return datetime.now(UTC)


def _components(report: HealthReport) -> dict[str, ComponentHealthModel]:
    return {
        name: ComponentHealthModel(
            status=c.status.value,
            component_type=c.component_type.value,
            critical=c.critical,
            response_time_ms=round(c.response_time_ms, 3),
            message=c.message,
            last_checked=c.last_checked,
            details=dict(c.details),
        )
        for name, c in report.components.items()
    }


def health_response(report: HealthReport, service: ServiceInfo) -> HealthCheckResponse:
    return HealthCheckResponse(
        status=report.status.value,
        service=service.name,
        version=service.version,
        environment=service.environment,
        timestamp=report.timestamp,
        uptime_seconds=service.uptime_seconds,
        components=_components(report),
    )


def health_json(report: HealthReport, service: ServiceInfo) -> HealthJsonResponse:
    """The IETF draft format: ``pass``/``warn``/``fail``, one ``responseTime`` check per component."""
    return HealthJsonResponse(
        status=_IETF_STATUS[report.status],
        version=service.version.split(".")[0] or "0",
        releaseId=service.version,
        serviceId=service.name,
        description=f"health of {service.name} ({service.environment})",
        output="" if report.status is HealthStatus.HEALTHY else f"service is {report.status.value}",
        checks={
            f"{name}:responseTime": [
                HealthJsonCheck(
                    componentId=name,
                    componentType=_IETF_TYPE.get(c.component_type, "component"),
                    observedValue=round(c.response_time_ms, 3),
                    status=_IETF_STATUS[c.status],
                    time=c.last_checked,
                    output=c.message,
                )
            ]
            for name, c in report.components.items()
        },
    )


# -- metrics ------------------------------------------------------------------------------------


def _time(nanos: int | None) -> datetime | None:
    return datetime.fromtimestamp(nanos / 1e9, UTC) if nanos else None


def _attributes(attributes: Any) -> dict[str, str | int | float | bool]:
    result: dict[str, str | int | float | bool] = {}
    for key, value in dict(attributes or {}).items():
        result[str(key)] = value if isinstance(value, str | int | float | bool) else str(value)
    return result


def _number(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _buckets(bounds: Sequence[float], counts: Sequence[int]) -> list[BucketModel]:
    labels = [f"{b:g}" for b in bounds] + ["+Inf"]
    return [BucketModel(le=le, count=int(count)) for le, count in zip(labels, counts, strict=False)]


def _kind(metric: Metric) -> str:
    data = metric.data
    if isinstance(data, Sum):
        return "counter" if data.is_monotonic else "gauge"
    if isinstance(data, Histogram):
        return "histogram"
    if isinstance(data, ExponentialHistogram):
        return "exponential_histogram"
    return "gauge"


def _points(metric: Metric) -> list[MetricDataPoint]:
    points = []
    for point in metric.data.data_points:
        common: dict[str, Any] = {
            "attributes": _attributes(point.attributes),
            "start_time": _time(getattr(point, "start_time_unix_nano", None)),
            "time": _time(point.time_unix_nano) or now(),
        }
        if isinstance(point, NumberDataPoint):
            points.append(MetricDataPoint(value=_number(point.value), **common))
        elif isinstance(point, HistogramDataPoint):
            points.append(
                MetricDataPoint(
                    count=point.count,
                    sum=_number(point.sum),
                    min=_number(point.min) if point.count else None,
                    max=_number(point.max) if point.count else None,
                    buckets=_buckets(point.explicit_bounds, point.bucket_counts),
                    **common,
                )
            )
        else:  # exponential histogram: count and sum only
            points.append(MetricDataPoint(count=point.count, sum=_number(point.sum), **common))
    return points


def metric_models(data: MetricsData | None) -> list[MetricModel]:
    """Every metric in a snapshot, sorted by name."""
    models = []
    for metric in iter_metrics(data):
        kind = _kind(metric)
        prom_kind = "counter" if kind == "counter" else "histogram" if "histogram" in kind else "gauge"
        models.append(
            MetricModel(
                name=metric.name,
                prometheus_name=prometheus_name(metric.name, metric.unit or "", prom_kind),
                type=kind,  # type: ignore[arg-type]
                description=metric.description or "",
                unit=metric.unit or "",
                data_points=_points(metric),
            )
        )
    return sorted(models, key=lambda m: m.name)


def find_metric(data: MetricsData | None, name: str) -> MetricModel | None:
    """One metric by OpenTelemetry name (``http.requests``) or Prometheus name (``http_requests_total``)."""
    for model in metric_models(data):
        if name in (model.name, model.prometheus_name):
            return model
    return None


# -- dashboard ----------------------------------------------------------------------------------


def dashboard(
    *,
    report: HealthReport,
    data: MetricsData | None,
    signals: LiveSignalsPlugin | None,
    service: ServiceInfo,
    window_s: float,
    top: int,
    errors: int,
    routes: int = 20,
    points: int = 120,
) -> DashboardResponse:
    series: list[SeriesPointModel] = []
    if signals is not None:
        live, recent = signals.live, signals.recent_errors
        newest = live.observe(data)
        stats = live.window(window_s, newest)
        requests = RequestStatsModel(
            window_seconds=stats.window_s,
            requests=stats.requests,
            errors=stats.errors,
            request_rate=stats.request_rate,
            error_rate=stats.error_rate,
            latency=LatencyModel(p50_ms=stats.p50_ms, p95_ms=stats.p95_ms, p99_ms=stats.p99_ms),
            status_codes=stats.status_codes,
        )
        series = [SeriesPointModel(**vars(p)) for p in live.series(window_s, newest, points)]
        recent_errors = [
            RecentErrorModel(**{**entry, "timestamp": datetime.fromtimestamp(entry["timestamp"], UTC)})
            for entry in recent.latest(errors)
        ]
    else:
        requests = RequestStatsModel(
            window_seconds=0.0,
            requests=0.0,
            errors=0.0,
            request_rate=0.0,
            error_rate=0.0,
            latency=LatencyModel(p50_ms=None, p95_ms=None, p99_ms=None),
        )
        recent_errors = []
    tools = [ToolStatsModel(**vars(t)) for t in tool_stats(data)]
    busiest = sorted(route_stats(data), key=lambda r: (-r.requests, r.route, r.method))[:routes]
    return DashboardResponse(
        service=service.name,
        timestamp=now(),
        uptime_seconds=service.uptime_seconds,
        health=HealthSummary(
            status=report.status.value,
            components={name: c.status.value for name, c in report.components.items()},
        ),
        requests=requests,
        active_connections=gauge_total(data, "active_connections"),
        top_tools_by_calls=sorted(tools, key=lambda t: (-t.calls, t.tool))[:top],
        top_tools_by_errors=sorted((t for t in tools if t.errors), key=lambda t: (-t.errors, t.tool))[:top],
        recent_errors=recent_errors,
        series=series,
        routes=[RouteStatsModel(**vars(r)) for r in busiest],
        health_checks=_components(report),
    )
