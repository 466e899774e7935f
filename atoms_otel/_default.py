"""The process default: the ``Telemetry`` handle ``atoms_otel.configure()`` fills, and the
convenience API bound to it.

This is the one module that holds a module-level handle. Everything below the facade is given a
handle when it is built; the names users reach for without one — ``configure()``, the decorators,
the middleware classes used as ``app.add_middleware(X)``, ``PerformanceMonitor``,
``instrument_mcp`` and ``router`` — pass :data:`DEFAULT_TELEMETRY` here (each also takes
``telemetry=`` to use another handle).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, TypeVar, overload

from fastapi import APIRouter

from atoms_otel.base import first_use
from atoms_otel.base.environment import describe
from atoms_otel.base.scrubbing import ScrubbingOptions
from atoms_otel.base.settings import ARGUMENTS
from atoms_otel.core import configure as _core
from atoms_otel.core.options import AdvancedOptions, MetricsOptions
from atoms_otel.core.telemetry import Plugin, RequestContext, Telemetry
from atoms_otel.endpoints.router import build_router
from atoms_otel.integrations.fastapi import instrument_fastapi
from atoms_otel.plugins.health import HealthPlugin, get_health_monitor
from atoms_otel.plugins.signals import performance as _performance
from atoms_otel.plugins.signals.plugin import LiveSignalsPlugin
from atoms_otel.plugins.webhooks import WebhookPlugin, webhook_manager
from atoms_otel.producers import httpx as _httpx
from atoms_otel.producers import mcp as _mcp
from atoms_otel.producers.http import engine as _engine
from atoms_otel.producers.http import middleware as _middleware
from atoms_otel.producers.http import serverless as _serverless
from atoms_otel.producers.instrument import database as _database
from atoms_otel.producers.instrument import operations as _operations
from atoms_otel.producers.instrument import spans as _spans
from atoms_otel.producers.instrument import timing as _timing
from atoms_otel.producers.instrument import tools as _tools

__all__ = [
    "DEFAULT_TELEMETRY",
    "ContextPropagationMiddleware",
    "ErrorTrackingMiddleware",
    "PerformanceMonitor",
    "PerformanceTrackingMiddleware",
    "RequestTrackingMiddleware",
    "ServerlessFlushMiddleware",
    "TelemetryMiddleware",
    "builtin_plugins",
    "configure",
    "default_router",
    "force_flush",
    "get_telemetry",
    "instrument_httpx",
    "instrument_mcp",
    "log_operation",
    "measure_performance",
    "observe_tool",
    "router",
    "shutdown",
    "span",
    "track_database_operation",
]

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_TELEMETRY = Telemetry()
"""The handle ``atoms_otel.configure()`` fills and the convenience API uses."""

_router: APIRouter | None = None
_router_lock = threading.Lock()

if TYPE_CHECKING:
    router: APIRouter
    """The observability router of the default handle (``/metrics``, ``/health*``, the API, the page)."""


def __getattr__(name: str) -> Any:
    """``router`` is built on first access (PEP 562): building its routes (and the ``pydantic.v1``
    import FastAPI's route setup triggers) costs ~30 ms a process that never serves them (a worker,
    a script, another project's test run) need not pay."""
    global _router
    if name != "router":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if _router is None:
        with _router_lock:
            if _router is None:
                _router = build_router(DEFAULT_TELEMETRY, get_health_monitor())
    return _router


def default_router() -> APIRouter:
    """The observability router of the default handle, built on first use."""
    router: APIRouter = __getattr__("router")
    return router


def _configure_with_defaults() -> None:
    configure()
    logging.getLogger("atoms_otel").info("atoms_otel configured with defaults; call configure() to choose")


first_use.arm(_configure_with_defaults)


def _used() -> None:
    if first_use.pending:
        first_use.run()


def get_telemetry() -> Telemetry | None:
    """The configured default handle, or ``None`` before configure() / after shutdown()."""
    return DEFAULT_TELEMETRY if DEFAULT_TELEMETRY.configured else None


def builtin_plugins() -> list[Plugin]:
    """The plugins configure() always runs, before the user's own. Health first: its transitions
    are events the webhook plugin turns into alerts. Webhooks are always on: events with no
    webhook registered cost one check, and webhooks added in code get the alerts too."""
    return [HealthPlugin(get_health_monitor()), LiveSignalsPlugin(), WebhookPlugin(webhook_manager)]


def configure(
    *,
    service_name: str | None = None,
    service_version: str | None = None,
    environment: str | None = None,
    resource_attributes: Mapping[str, str] | None = None,
    otlp_endpoint: str | None = None,
    otlp_protocol: Literal["http/protobuf", "grpc"] | None = None,
    otlp_headers: Mapping[str, str] | None = None,
    log_level: str | int | None = None,
    log_format: Literal["json", "console"] | None = None,
    slow_request_ms: float | None = None,
    excluded_urls: Sequence[str] | str | None = None,
    webhook_url: str | None = None,
    webhook_secret: str | None = None,
    webhook_log_level: str | int | None = None,
    api_token: str | None = None,
    protect_metrics: bool | None = None,
    trace_sampler: str | None = None,
    trace_sampler_arg: float | None = None,
    disabled: bool | None = None,
    console_spans: bool | None = None,
    serverless: bool | None = None,
    app: Any = None,
    metrics: MetricsOptions | None = None,
    scrubbing: ScrubbingOptions | Literal[False] | None = None,
    install_logging: bool = True,
    plugins: Sequence[Plugin] = (),
    advanced: AdvancedOptions | None = None,
    request_context: RequestContext | None = None,
) -> Telemetry:
    arguments = {name: value for name, value in locals().items() if name in ARGUMENTS}
    first_use.disarm()
    _core.configure(
        DEFAULT_TELEMETRY,
        arguments,
        metrics=metrics,
        scrubbing=scrubbing,
        install_logging=install_logging,
        plugins=[*builtin_plugins(), *plugins],
        advanced=advanced,
        request_context=request_context,
    )
    if app is not None:
        instrument_fastapi(
            app,
            DEFAULT_TELEMETRY,
            router=default_router(),
            middleware=TelemetryMiddleware,
            flush_middleware=ServerlessFlushMiddleware,
        )
    return DEFAULT_TELEMETRY


configure.__doc__ = f"""Set up traces, metrics and logs for this process, and instrument ``app`` if given.

    Every option may be left out: ``None`` means "the environment variable, else the default"
    (``python -m atoms_otel env`` lists them). With no OTLP endpoint everything stays in-process:
    JSON logs on stdout, Prometheus text at ``/metrics``, spans on the in-process pipeline.
    Calling it again replaces the setup: the new pipeline is put in place, then the old one retired.

    Args:
{describe()}
    app: a FastAPI app to instrument: middleware, ``/metrics`` and the observability router.
    metrics: :class:`MetricsOptions` (export interval, cardinality limit).
    scrubbing: :class:`ScrubbingOptions` to extend secret redaction, or ``False`` to turn it off.
    install_logging: route stdlib logging through our formatter (default ``True``).
    plugins: objects with ``setup(telemetry)`` / ``shutdown()``, after the built-in ones.
    advanced: :class:`AdvancedOptions`.
    request_context: ``callable(scope) -> {{"user_id": ..., "session_id": ...}} | None``, called for
        each request before the handler runs (and again when the response starts, for state the
        app's own auth set meanwhile); what it returns is the request's log context and span
        attributes. Identity never comes from a raw client header unless this hook says so.

    Returns:
        The default :class:`Telemetry` handle.

    Raises:
        ConfigurationError: a setting has an invalid value; the message names each one.
    """


def shutdown() -> None:
    """Flush and release everything configure() set up. Safe to call twice, and before configure()."""
    first_use.disarm()
    DEFAULT_TELEMETRY.shutdown()


def force_flush(timeout_s: float | None = None) -> bool:
    """Export everything buffered now (e.g. before a serverless function returns)."""
    return DEFAULT_TELEMETRY.force_flush(timeout_s)


# -- producers bound to the default handle ------------------------------------------------------


@overload
def observe_tool(name: F, /) -> F: ...


@overload
def observe_tool(
    name: str,
    track_performance: bool = True,
    log_inputs: bool = False,
    log_outputs: bool = False,
    *,
    telemetry: Telemetry | None = None,
) -> Callable[[F], F]: ...


def observe_tool(
    name: str | F,
    track_performance: bool = True,
    log_inputs: bool = False,
    log_outputs: bool = False,
    *,
    telemetry: Telemetry | None = None,
) -> Callable[[F], F] | F:
    if callable(name):  # bare @observe_tool: the function's name is the tool's
        return _tools.observe_tool(name.__name__, telemetry=DEFAULT_TELEMETRY)(name)
    return _tools.observe_tool(
        name, track_performance, log_inputs, log_outputs, telemetry=telemetry or DEFAULT_TELEMETRY
    )


@overload
def log_operation(name: F, /) -> F: ...


@overload
def log_operation(
    name: str,
    log_level: str | int = "INFO",
    log_inputs: bool = False,
    log_outputs: bool = False,
    *,
    telemetry: Telemetry | None = None,
) -> Callable[[F], F]: ...


def log_operation(
    name: str | F,
    log_level: str | int = "INFO",
    log_inputs: bool = False,
    log_outputs: bool = False,
    *,
    telemetry: Telemetry | None = None,
) -> Callable[[F], F] | F:
    if callable(name):  # bare @log_operation: the function's name is the operation's
        return _operations.log_operation(name.__name__, telemetry=DEFAULT_TELEMETRY)(name)
    return _operations.log_operation(
        name, log_level, log_inputs, log_outputs, telemetry=telemetry or DEFAULT_TELEMETRY
    )


@overload
def measure_performance(name: F, /) -> F: ...


@overload
def measure_performance(
    name: str,
    threshold_warning_ms: float | None = None,
    threshold_critical_ms: float | None = None,
    *,
    telemetry: Telemetry | None = None,
) -> Callable[[F], F]: ...


def measure_performance(
    name: str | F,
    threshold_warning_ms: float | None = None,
    threshold_critical_ms: float | None = None,
    *,
    telemetry: Telemetry | None = None,
) -> Callable[[F], F] | F:
    metrics = (telemetry or DEFAULT_TELEMETRY).metrics
    if callable(name):  # bare @measure_performance: the function's name is the operation's
        return _timing.measure_performance(name.__name__, metrics=metrics)(name)
    return _timing.measure_performance(name, threshold_warning_ms, threshold_critical_ms, metrics=metrics)


def track_database_operation(
    operation_type: str,
    table: str = "",
    *,
    system: str = "other_sql",
    telemetry: Telemetry | None = None,
) -> Callable[[F], F]:
    return _database.track_database_operation(
        operation_type, table, system=system, telemetry=telemetry or DEFAULT_TELEMETRY
    )


observe_tool.__doc__ = _tools.observe_tool.__doc__
log_operation.__doc__ = _operations.log_operation.__doc__
measure_performance.__doc__ = _timing.measure_performance.__doc__
track_database_operation.__doc__ = _database.track_database_operation.__doc__


def instrument_mcp(server: Any, *, record_arguments: bool = False, telemetry: Telemetry | None = None) -> Any:
    return _mcp.instrument_mcp(
        server, telemetry=telemetry or DEFAULT_TELEMETRY, record_arguments=record_arguments
    )


instrument_mcp.__doc__ = _mcp.instrument_mcp.__doc__


def span(name: str, /, **attributes: Any) -> _spans.ManualSpan:
    """A manual span: ``with atoms_otel.span("load profile", tier="pro") as s: ...`` or
    ``@atoms_otel.span("rank results")`` on a sync or async function. Attributes are coerced to
    OpenTelemetry values and scrubbed on export; an exception is recorded and re-raised unchanged."""
    return _spans.ManualSpan(DEFAULT_TELEMETRY, name, attributes)


def instrument_httpx(*, telemetry: Telemetry | None = None, **options: Any) -> None:
    _httpx.instrument_httpx(telemetry=telemetry or DEFAULT_TELEMETRY, **options)


instrument_httpx.__doc__ = _httpx.instrument_httpx.__doc__


class _DefaultHandle:
    """Middleware mixin: ``telemetry`` defaults to the handle ``atoms_otel.configure()`` fills, so
    ``app.add_middleware(X)`` needs no arguments."""

    def __init__(self, app: Any, *, telemetry: Telemetry | None = None, **options: Any) -> None:
        if telemetry is None:
            _used()
        super().__init__(app, telemetry=telemetry or DEFAULT_TELEMETRY, **options)  # type: ignore[call-arg]


class TelemetryMiddleware(_DefaultHandle, _engine.TelemetryMiddleware):
    __doc__ = _engine.TelemetryMiddleware.__doc__


class ContextPropagationMiddleware(_DefaultHandle, _middleware.ContextPropagationMiddleware):
    __doc__ = _middleware.ContextPropagationMiddleware.__doc__


class RequestTrackingMiddleware(_DefaultHandle, _middleware.RequestTrackingMiddleware):
    __doc__ = _middleware.RequestTrackingMiddleware.__doc__


class PerformanceTrackingMiddleware(_DefaultHandle, _middleware.PerformanceTrackingMiddleware):
    __doc__ = _middleware.PerformanceTrackingMiddleware.__doc__


class ErrorTrackingMiddleware(_DefaultHandle, _middleware.ErrorTrackingMiddleware):
    __doc__ = _middleware.ErrorTrackingMiddleware.__doc__


class ServerlessFlushMiddleware(_DefaultHandle, _serverless.ServerlessFlushMiddleware):
    __doc__ = _serverless.ServerlessFlushMiddleware.__doc__


class PerformanceMonitor(_performance.PerformanceMonitor):
    __doc__ = _performance.PerformanceMonitor.__doc__

    def __init__(
        self, name: str = "performance", *, telemetry: Telemetry | None = None, **options: Any
    ) -> None:
        super().__init__(name, telemetry=telemetry or DEFAULT_TELEMETRY, **options)
