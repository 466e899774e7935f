"""Pydantic response models of the health and observability endpoints (they appear in OpenAPI)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

__all__ = [
    "ComponentHealthModel",
    "DashboardResponse",
    "ErrorResponse",
    "HealthCheckResponse",
    "HealthJsonCheck",
    "HealthJsonResponse",
    "HealthSummary",
    "LatencyModel",
    "LivenessResponse",
    "MetricDataPoint",
    "MetricModel",
    "MetricsSnapshotResponse",
    "ReadinessResponse",
    "RecentErrorModel",
    "RequestStatsModel",
    "RouteStatsModel",
    "SeriesPointModel",
    "ToolStatsModel",
]

Status = Literal["healthy", "degraded", "unhealthy", "unknown"]
AttributeValue = str | int | float | bool


class ComponentHealthModel(BaseModel):
    """One component's latest check."""

    status: Status
    component_type: str = Field(examples=["database"])
    critical: bool
    response_time_ms: float
    message: str = Field(description="Short and sanitized; empty when there is nothing to say.")
    last_checked: datetime
    details: dict[str, Any] = Field(default_factory=dict)


class HealthCheckResponse(BaseModel):
    """``GET /health``: the aggregated status (200 unless unhealthy, then 503)."""

    status: Status
    service: str
    version: str
    environment: str
    timestamp: datetime
    uptime_seconds: float
    components: dict[str, ComponentHealthModel]


class HealthJsonCheck(BaseModel):
    """One measurement in the IETF health-check response format."""

    componentId: str
    componentType: str
    observedValue: float
    observedUnit: str = "ms"
    status: Literal["pass", "warn", "fail"]
    time: datetime
    output: str = ""


class HealthJsonResponse(BaseModel):
    """``GET /health`` with ``Accept: application/health+json`` (draft-inadarei-api-health-check)."""

    status: Literal["pass", "warn", "fail"]
    version: str
    releaseId: str
    serviceId: str
    description: str
    output: str = ""
    checks: dict[str, list[HealthJsonCheck]]


class LivenessResponse(BaseModel):
    """``GET /health/live``: the process and its event loop are serving."""

    status: Literal["alive"] = "alive"
    uptime_seconds: float


class ReadinessResponse(BaseModel):
    """``GET /health/ready``: 200 ready, 503 not ready (with the reason)."""

    status: Literal["ready", "not_ready"]
    reason: str = ""
    failing_components: list[str] = Field(default_factory=list)


class ErrorResponse(BaseModel):
    """A clear error (401, 404)."""

    detail: str


class BucketModel(BaseModel):
    le: str = Field(description='Upper bound of the bucket ("+Inf" for the last one).')
    count: int = Field(description="Observations in this bucket (not cumulative).")


class MetricDataPoint(BaseModel):
    """One series: a value (counter, gauge), or count/sum/buckets (histogram)."""

    attributes: dict[str, AttributeValue]
    value: float | None = None
    count: int | None = None
    sum: float | None = None
    min: float | None = None
    max: float | None = None
    buckets: list[BucketModel] | None = None
    start_time: datetime | None = None
    time: datetime


class MetricModel(BaseModel):
    name: str = Field(description="OpenTelemetry name, e.g. http.requests")
    prometheus_name: str = Field(description="As /metrics shows it, e.g. http_requests_total")
    type: Literal["counter", "gauge", "histogram", "exponential_histogram"]
    description: str
    unit: str
    data_points: list[MetricDataPoint]


class MetricsSnapshotResponse(BaseModel):
    """Every metric with its current (cumulative) data points."""

    service: str
    timestamp: datetime
    metrics: list[MetricModel]


class HealthSummary(BaseModel):
    status: Status
    components: dict[str, Status]


class LatencyModel(BaseModel):
    """Estimated from histogram buckets by linear interpolation (``None`` without traffic)."""

    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None


class RequestStatsModel(BaseModel):
    window_seconds: float = Field(description="The span actually covered by readings.")
    requests: float
    errors: float = Field(description="Responses with a 5xx status.")
    request_rate: float = Field(description="Requests per second over the window.")
    error_rate: float = Field(description="errors / requests over the window (0..1).")
    latency: LatencyModel
    status_codes: dict[str, float] = Field(
        default_factory=dict,
        description='Responses per status code over the window (at most 32 codes, then "other").',
    )


class SeriesPointModel(BaseModel):
    """HTTP traffic in one interval of the time series."""

    seconds_ago: float = Field(description="When the interval ended, before the newest reading.")
    interval_s: float
    requests: float
    errors: float = Field(description="Responses with a 5xx status.")
    request_rate: float = Field(description="Requests per second in the interval.")
    error_ratio: float = Field(description="errors / requests in the interval (0..1).")
    p50_ms: float | None = Field(default=None, description="Latency percentiles in the interval.")
    p95_ms: float | None = None
    p99_ms: float | None = None


class RouteStatsModel(BaseModel):
    """One route (method and template) since the pipeline started."""

    method: str
    route: str = Field(examples=["/items/{item_id}"])
    requests: float
    client_errors: float = Field(description="Responses with a 4xx status.")
    server_errors: float = Field(description="Responses with a 5xx status.")
    error_rate: float = Field(description="server_errors / requests (0..1).")
    avg_duration_ms: float | None
    p95_ms: float | None


class ToolStatsModel(BaseModel):
    tool: str
    calls: float
    errors: float
    error_rate: float
    avg_duration_ms: float | None
    p95_ms: float | None


class RecentErrorModel(BaseModel):
    timestamp: datetime
    error_type: str
    method: str
    route: str
    status_code: int | None
    message: str
    correlation_id: str | None
    trace_id: str | None


class DashboardResponse(BaseModel):
    """Everything a dashboard shows, computed from this process's own live signals."""

    service: str
    timestamp: datetime
    uptime_seconds: float
    health: HealthSummary
    requests: RequestStatsModel
    active_connections: float
    top_tools_by_calls: list[ToolStatsModel] = Field(description="Since the pipeline started.")
    top_tools_by_errors: list[ToolStatsModel] = Field(description="Tools with errors, most first.")
    recent_errors: list[RecentErrorModel] = Field(description="Newest first.")
    series: list[SeriesPointModel] = Field(
        default_factory=list, description="Request rate and error ratio over the window, oldest first."
    )
    routes: list[RouteStatsModel] = Field(
        default_factory=list, description="Busiest routes since the pipeline started."
    )
    health_checks: dict[str, ComponentHealthModel] = Field(
        default_factory=dict, description="Each component's latest check, with its message."
    )
