"""atoms_otel: OpenTelemetry for FastAPI services that serve MCP tools, in one ``configure()``.

>>> import atoms_otel
>>> atoms_otel.configure(app=app, service_name="atoms-mcp")

Every public name is importable from here; the modules behind them are implementation detail.
"""

from typing import TYPE_CHECKING, Any

from atoms_otel import _default
from atoms_otel._default import (
    ContextPropagationMiddleware,
    ErrorTrackingMiddleware,
    PerformanceMonitor,
    PerformanceTrackingMiddleware,
    RequestTrackingMiddleware,
    ServerlessFlushMiddleware,
    TelemetryMiddleware,
    configure,
    force_flush,
    get_telemetry,
    instrument_httpx,
    instrument_mcp,
    log_operation,
    measure_performance,
    observe_tool,
    shutdown,
    span,
    track_database_operation,
)
from atoms_otel._version import __version__
from atoms_otel.base.context import (
    LogContext,
    clear_context,
    current_context,
    get_correlation_id,
    get_request_path,
    get_session_id,
    get_user_id,
    new_correlation_id,
    set_correlation_id,
    set_request_path,
    set_session_id,
    set_user_id,
)
from atoms_otel.base.events import (
    Event,
    EventBus,
    EventHub,
    HealthChanged,
    PerformanceDegraded,
    SlowRequest,
    UnhandledError,
    WebhookOutcome,
)
from atoms_otel.base.scrubbing import REDACTED, Scrubber, ScrubbingOptions
from atoms_otel.base.settings import ConfigurationError
from atoms_otel.core.options import AdvancedOptions, MetricsOptions
from atoms_otel.core.telemetry import Plugin, Telemetry
from atoms_otel.endpoints.models import DashboardResponse, HealthCheckResponse, MetricsSnapshotResponse
from atoms_otel.otel.logs import AtomLogger, ConsoleFormatter, StructuredFormatter, get_logger
from atoms_otel.otel.metrics import (
    Counter,
    Gauge,
    Histogram,
    MetricsRegistry,
    get_metrics_registry,
    record_cache_operation,
    record_database_query,
    record_error,
    record_http_request,
    record_tool_execution,
)
from atoms_otel.plugins.health import (
    AuthKitHealthCheck,
    CircuitBreaker,
    CircuitOpenError,
    CircuitState,
    ComponentHealth,
    ComponentType,
    CustomHealthCheck,
    HealthCheck,
    HealthMonitor,
    HealthReport,
    HealthStatus,
    SupabaseHealthCheck,
    check_health,
    get_health_monitor,
    register_health_check,
)
from atoms_otel.plugins.webhooks import (
    WebhookClient,
    WebhookConfig,
    WebhookEventType,
    WebhookFormat,
    WebhookManager,
    WebhookPayload,
    configure_vercel_webhook,
    webhook_manager,
)
from atoms_otel.producers.instrument.timing import PerformanceMetric

if TYPE_CHECKING:
    from fastapi import APIRouter

    router: APIRouter
    """The observability router of the default handle (``/metrics``, ``/health*``, the API, the page)."""


def __getattr__(name: str) -> Any:
    """``router`` is built on first access (PEP 562), so that ``import atoms_otel`` does not build
    routes a process that serves no endpoints never uses."""
    if name == "router":
        return _default.default_router()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "REDACTED",
    "AdvancedOptions",
    "AtomLogger",
    "AuthKitHealthCheck",
    "CircuitBreaker",
    "CircuitOpenError",
    "CircuitState",
    "ComponentHealth",
    "ComponentType",
    "ConfigurationError",
    "ConsoleFormatter",
    "ContextPropagationMiddleware",
    "Counter",
    "CustomHealthCheck",
    "DashboardResponse",
    "ErrorTrackingMiddleware",
    "Event",
    "EventBus",
    "EventHub",
    "Gauge",
    "HealthChanged",
    "HealthCheck",
    "HealthCheckResponse",
    "HealthMonitor",
    "HealthReport",
    "HealthStatus",
    "Histogram",
    "LogContext",
    "MetricsOptions",
    "MetricsRegistry",
    "MetricsSnapshotResponse",
    "PerformanceDegraded",
    "PerformanceMetric",
    "PerformanceMonitor",
    "PerformanceTrackingMiddleware",
    "Plugin",
    "RequestTrackingMiddleware",
    "Scrubber",
    "ScrubbingOptions",
    "ServerlessFlushMiddleware",
    "SlowRequest",
    "StructuredFormatter",
    "SupabaseHealthCheck",
    "Telemetry",
    "TelemetryMiddleware",
    "UnhandledError",
    "WebhookClient",
    "WebhookConfig",
    "WebhookEventType",
    "WebhookFormat",
    "WebhookManager",
    "WebhookOutcome",
    "WebhookPayload",
    "__version__",
    "check_health",
    "clear_context",
    "configure",
    "configure_vercel_webhook",
    "current_context",
    "force_flush",
    "get_correlation_id",
    "get_health_monitor",
    "get_logger",
    "get_metrics_registry",
    "get_request_path",
    "get_session_id",
    "get_telemetry",
    "get_user_id",
    "instrument_httpx",
    "instrument_mcp",
    "log_operation",
    "measure_performance",
    "new_correlation_id",
    "observe_tool",
    "record_cache_operation",
    "record_database_query",
    "record_error",
    "record_http_request",
    "record_tool_execution",
    "register_health_check",
    "router",
    "set_correlation_id",
    "set_request_path",
    "set_session_id",
    "set_user_id",
    "shutdown",
    "span",
    "track_database_operation",
    "webhook_manager",
]
