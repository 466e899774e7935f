"""``configure()``: one call that sets up traces, metrics and logs; ``shutdown()`` and ``force_flush()``.

configure() validates every setting first (raising one :class:`ConfigurationError` that names each
bad setting), then builds a new pipeline, swaps it in behind the global providers, and only then
retires the previous one — so calling it again replaces the setup cleanly, and a failed call leaves
the previous setup untouched.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any, Literal

from opentelemetry import metrics as metrics_api
from opentelemetry import trace as trace_api
from opentelemetry._logs import NoOpLoggerProvider
from opentelemetry.sdk._logs import LogRecordProcessor
from opentelemetry.sdk._logs.export import LogRecordExporter
from opentelemetry.sdk.metrics.export import MetricReader, MetricsData
from opentelemetry.sdk.trace import SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter

from atoms_otel.base import guard as _guard

from atoms_otel.otel import proxy as _proxy
from atoms_otel.otel import metrics as _metrics
from atoms_otel.base import scrubbing as _scrubbing
from atoms_otel.base.settings import ConfigurationError, Settings, resolve
from atoms_otel._version import __version__
from atoms_otel.otel.logs import LoggingInstallation
from atoms_otel.plugins import EventHub, Plugin, builtin_plugins
from atoms_otel.otel.pipeline import Pipeline, build_pipeline
from atoms_otel.base.scrubbing import Scrubber, ScrubbingOptions

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

__all__ = [
    "AdvancedOptions",
    "ConfigurationError",
    "MetricsOptions",
    "Telemetry",
    "configure",
    "force_flush",
    "get_telemetry",
    "shutdown",
]

_logger = logging.getLogger("atoms_otel")


@dataclass(frozen=True)
class MetricsOptions:
    """Metric pipeline options (``None`` means: environment, then default)."""

    export_interval_ms: int | None = None
    """How often metrics are pushed by OTLP (``OTEL_METRIC_EXPORT_INTERVAL``, default 10000)."""

    cardinality_limit: int | None = None
    """Label sets kept per metric before folding into ``otel_metric_overflow="true"``
    (``ATOMS_OTEL_METRIC_CARDINALITY_LIMIT``, default 2000)."""


@dataclass(frozen=True)
class AdvancedOptions:
    """Extension points and knobs most services never need."""

    span_exporters: Sequence[SpanExporter] = ()
    """Extra span exporters (each behind a simple processor, scrubbed and guarded)."""

    span_processors: Sequence[SpanProcessor] = ()
    """Extra span processors, after the context processor and before the exporters."""

    metric_readers: Sequence[MetricReader] = ()
    """Extra metric readers (e.g. ``InMemoryMetricReader`` in tests)."""

    log_exporters: Sequence[LogRecordExporter] = ()
    """Extra OTel log exporters (each behind a simple processor, scrubbed and guarded)."""

    log_processors: Sequence[LogRecordProcessor] = ()
    """Extra OTel log-record processors."""

    log_stream: IO[str] | None = None
    """Where log lines are written (default ``sys.stdout``)."""

    shutdown_timeout_s: float = 5.0
    """Upper bound on how long shutdown() and force_flush() wait for exporters, all signals together."""

    synchronous_export: bool = False
    """Export each span and log record as it ends (tests, serverless). Slower per call."""


@dataclass
class Telemetry:
    """The handle configure() returns: the settings, the providers, and the running parts."""

    settings: Settings
    pipeline: Pipeline | None
    scrubber: Scrubber | None
    events: EventHub
    advanced: AdvancedOptions
    plugins: list[Plugin] = field(default_factory=list)
    logging: LoggingInstallation | None = None
    apps: list[Any] = field(default_factory=list)
    _closed: bool = False

    @property
    def enabled(self) -> bool:
        """False when ``OTEL_SDK_DISABLED=true``: everything records into no-ops."""
        return self.pipeline is not None

    @property
    def tracer(self) -> trace_api.Tracer:
        return _proxy.TRACER_PROVIDER.get_tracer("atoms_otel", __version__)

    @property
    def meter(self) -> metrics_api.Meter:
        return _proxy.METER_PROVIDER.get_meter("atoms_otel", __version__)

    @property
    def metrics(self) -> _metrics.MetricsRegistry:
        return _metrics.get_metrics_registry()

    @property
    def prometheus_registry(self) -> CollectorRegistry | None:
        return self.pipeline.prometheus_registry if self.pipeline else None

    def metrics_text(self) -> bytes:
        """The Prometheus text exposition of every metric (what ``GET /metrics`` serves)."""
        from prometheus_client import generate_latest

        return generate_latest(self.pipeline.prometheus_registry) if self.pipeline else b""

    def metrics_snapshot(self) -> MetricsData | None:
        """Every metric's current data points (cumulative), collected now."""
        return self.pipeline.prometheus_reader.snapshot() if self.pipeline else None

    def force_flush(self, timeout_s: float | None = None) -> bool:
        """Export everything buffered now. Bounded by ``timeout_s`` (default: the shutdown timeout).

        Plugins with a ``force_flush(timeout_s) -> bool`` method (webhooks: queued alerts) are
        flushed first, within the same deadline.
        """
        if self._closed:
            return True
        deadline = time.monotonic() + (
            timeout_s if timeout_s is not None else self.advanced.shutdown_timeout_s
        )
        flushed = True
        for plugin in self.plugins:
            flush = getattr(plugin, "force_flush", None)
            if callable(flush):
                with _guard.guard(f"plugin {type(plugin).__name__} force_flush"):
                    flushed = bool(flush(max(0.0, deadline - time.monotonic()))) and flushed
        if self.pipeline is None:
            return flushed
        return self.pipeline.force_flush(max(0.0, deadline - time.monotonic())) and flushed

    def shutdown(self) -> None:
        """Stop plugins, flush and release the providers, and undo the logging changes. Idempotent."""
        if self._closed:
            return
        self._closed = True
        for plugin in reversed(self.plugins):
            with _guard.guard(f"plugin {type(plugin).__name__} shutdown"):
                plugin.shutdown()
        self.events.clear()
        if self.pipeline is not None:
            with _guard.guard("pipeline shutdown"):
                self.pipeline.shutdown(self.advanced.shutdown_timeout_s)
        if self.logging is not None:
            self.logging.uninstall()


_lock = threading.RLock()
_current: Telemetry | None = None
_atexit_registered = False


def get_telemetry() -> Telemetry | None:
    """The active configuration, or ``None`` before configure() / after shutdown()."""
    return _current


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
    app: Any = None,
    slow_request_ms: float | None = None,
    excluded_urls: Sequence[str] | str | None = None,
    webhook_url: str | None = None,
    webhook_secret: str | None = None,
    webhook_log_level: str | int | None = None,
    api_token: str | None = None,
    protect_metrics: bool | None = None,
    trace_sampler: str | None = None,
    trace_sampler_arg: float | None = None,
    console_spans: bool | None = None,
    serverless: bool | None = None,
    disabled: bool | None = None,
    metrics: MetricsOptions | None = None,
    scrubbing: ScrubbingOptions | Literal[False] | None = None,
    install_logging: bool = True,
    plugins: Sequence[Plugin] = (),
    advanced: AdvancedOptions | None = None,
) -> Telemetry:
    """Set up traces, metrics and logs for this process, and instrument ``app`` if given.

    Every option may be left out: ``None`` means "the environment variable, else the default"
    (see the README's configuration table). With no OTLP endpoint everything stays in-process:
    JSON logs on stdout, Prometheus text at ``/metrics``, spans on the in-process pipeline.

    Args:
        service_name: ``service.name`` (``OTEL_SERVICE_NAME``).
        service_version: ``service.version`` (``ATOMS_OTEL_SERVICE_VERSION``).
        environment: ``deployment.environment`` (``ATOMS_OTEL_ENVIRONMENT``, default ``development``).
        resource_attributes: extra resource attributes (``OTEL_RESOURCE_ATTRIBUTES``).
        otlp_endpoint: base URL of an OTLP collector (``OTEL_EXPORTER_OTLP_ENDPOINT``); per-signal
            ``OTEL_EXPORTER_OTLP_{TRACES,METRICS,LOGS}_ENDPOINT`` are honoured too.
        otlp_protocol: ``http/protobuf`` (default) or ``grpc`` (``pip install 'atoms-otel[grpc]'``).
        otlp_headers: headers sent with every export (``OTEL_EXPORTER_OTLP_HEADERS``).
        log_level: ``DEBUG``..``CRITICAL`` (``ATOMS_OTEL_LOG_LEVEL``, default ``INFO``).
        log_format: ``json`` (default) or ``console`` (``ATOMS_OTEL_LOG_FORMAT``).
        app: a FastAPI app to instrument: middleware, ``/metrics`` and the observability router.
        slow_request_ms: requests slower than this log a warning (``ATOMS_OTEL_SLOW_REQUEST_MS``).
        excluded_urls: paths without spans; ``*`` suffix for prefixes (``ATOMS_OTEL_EXCLUDED_URLS``).
        webhook_url, webhook_secret: register a webhook at startup (``ATOMS_OTEL_WEBHOOK_*``);
            the secret is a Standard Webhooks ``whsec_<base64>`` signing key.
        webhook_log_level: also alert on log records at or above this level, e.g. ``ERROR``
            (``ATOMS_OTEL_WEBHOOK_LOG_LEVEL``, default off).
        api_token: bearer token protecting ``/api/observability/*`` (``ATOMS_OTEL_API_TOKEN``).
        protect_metrics: require that token on ``/metrics`` too (``ATOMS_OTEL_PROTECT_METRICS``).
        trace_sampler, trace_sampler_arg: as ``OTEL_TRACES_SAMPLER`` / ``OTEL_TRACES_SAMPLER_ARG``.
        console_spans: also print finished spans to stdout (``ATOMS_OTEL_CONSOLE_SPANS``).
        serverless: flush before each response ends (auto on Vercel / AWS Lambda).
        disabled: no-op telemetry (``OTEL_SDK_DISABLED``); the app runs unchanged.
        metrics: :class:`MetricsOptions` (export interval, cardinality limit).
        scrubbing: :class:`ScrubbingOptions` to extend secret redaction, or ``False`` to turn it off.
        install_logging: route stdlib logging through our formatter (default ``True``).
        plugins: objects with ``setup(telemetry)`` / ``shutdown()``.
        advanced: :class:`AdvancedOptions`.

    Raises:
        ConfigurationError: a setting has an invalid value; the message names each one.
    """
    global _current, _atexit_registered
    metrics_options = metrics or MetricsOptions()
    arguments = {
        "service_name": service_name,
        "service_version": service_version,
        "environment": environment,
        "resource_attributes": resource_attributes,
        "otlp_endpoint": otlp_endpoint,
        "otlp_protocol": otlp_protocol,
        "otlp_headers": otlp_headers,
        "log_level": log_level,
        "log_format": log_format,
        "slow_request_ms": slow_request_ms,
        "excluded_urls": excluded_urls,
        "webhook_url": webhook_url,
        "webhook_secret": webhook_secret,
        "webhook_log_level": webhook_log_level,
        "api_token": api_token,
        "protect_metrics": protect_metrics,
        "trace_sampler": trace_sampler,
        "trace_sampler_arg": trace_sampler_arg,
        "console_spans": console_spans,
        "serverless": serverless,
        "disabled": disabled,
        "metric_export_interval_ms": metrics_options.export_interval_ms,
        "metric_cardinality_limit": metrics_options.cardinality_limit,
    }
    settings = resolve(arguments, os.environ)
    advanced = advanced or AdvancedOptions()
    scrubber = None if scrubbing is False else Scrubber(scrubbing or None)

    with _lock:
        pipeline = None
        if not settings.disabled:
            pipeline = build_pipeline(
                settings,
                scrubber,
                span_exporters=advanced.span_exporters,
                span_processors=advanced.span_processors,
                metric_readers=advanced.metric_readers,
                log_exporters=advanced.log_exporters,
                log_processors=advanced.log_processors,
                simple_export=advanced.synchronous_export,
            )
        previous = _current
        telemetry = Telemetry(
            settings=settings, pipeline=pipeline, scrubber=scrubber, events=EventHub(), advanced=advanced
        )

        taken = _proxy.install_globals()
        if pipeline is not None:
            _proxy.TRACER_PROVIDER.set_delegate(pipeline.tracer_provider)
            _proxy.METER_PROVIDER.set_delegate(pipeline.meter_provider)
            _proxy.LOGGER_PROVIDER.set_delegate(pipeline.logger_provider)
        else:
            _proxy.TRACER_PROVIDER.set_delegate(trace_api.NoOpTracerProvider())
            _proxy.METER_PROVIDER.set_delegate(metrics_api.NoOpMeterProvider())
            _proxy.LOGGER_PROVIDER.set_delegate(NoOpLoggerProvider())
        _metrics.get_metrics_registry()  # the pre-configured metrics exist from the first configure()
        _metrics.rebind_all()
        _scrubbing.set_active_scrubber(scrubber)
        _current = telemetry
        if previous is not None:
            previous.shutdown()
        if install_logging:
            telemetry.logging = LoggingInstallation(
                level=settings.log_level,
                fmt=settings.log_format,
                stream=advanced.log_stream,
                otel_provider=_proxy.LOGGER_PROVIDER
                if pipeline is not None and pipeline.exports_logs
                else None,
            )
            telemetry.logging.install()
        if not _atexit_registered:
            atexit.register(shutdown)
            _atexit_registered = True

    if taken:
        _logger.warning(
            "another OpenTelemetry %s provider was already set globally; atoms_otel's own "
            "instrumentation uses its pipeline, but third-party instrumentation keeps the other one",
            "/".join(taken),
        )
    if app is not None:
        from atoms_otel.integrations.fastapi import instrument_app

        instrument_app(app, telemetry)
    for plugin in [*builtin_plugins(settings), *plugins]:
        try:
            plugin.setup(telemetry)
            telemetry.plugins.append(plugin)
        except Exception as exc:
            _guard.report_internal_error(f"plugin {type(plugin).__name__} setup", exc)
    _logger.debug(
        "atoms_otel configured",
        extra={
            "service": settings.service_name,
            "otlp": dict(pipeline.destinations) if pipeline else {},
            "disabled": settings.disabled,
        },
    )
    return telemetry


def shutdown() -> None:
    """Flush and release everything configure() set up. Safe to call twice, and before configure()."""
    global _current
    with _lock:
        telemetry, _current = _current, None
        if telemetry is None:
            return
        telemetry.shutdown()
        _proxy.TRACER_PROVIDER.set_delegate(trace_api.NoOpTracerProvider())
        _proxy.METER_PROVIDER.set_delegate(metrics_api.NoOpMeterProvider())
        _proxy.LOGGER_PROVIDER.set_delegate(NoOpLoggerProvider())
        _scrubbing.set_active_scrubber(_scrubbing.Scrubber())


def force_flush(timeout_s: float | None = None) -> bool:
    """Export everything buffered now (e.g. before a serverless function returns)."""
    telemetry = _current
    return telemetry.force_flush(timeout_s) if telemetry is not None else True
