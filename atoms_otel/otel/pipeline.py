"""Build the OpenTelemetry pipeline from resolved settings.

Resource → TracerProvider (batch export) · MeterProvider (a Prometheus reader on our own
``CollectorRegistry``, plus a periodic OTLP reader when an endpoint is set) · LoggerProvider (OTLP
when an endpoint is set). With no endpoint nothing connects anywhere. Every exporter is wrapped by a
guard that scrubs secrets and reports failures once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.sdk._logs import LoggerProvider, LogRecordProcessor
from opentelemetry.sdk._logs.export import (
    BatchLogRecordProcessor,
    ConsoleLogRecordExporter,
    LogRecordExporter,
    SimpleLogRecordProcessor,
)
from opentelemetry.sdk.metrics import (
    AlwaysOffExemplarFilter,
    AlwaysOnExemplarFilter,
    Counter,
    ExemplarFilter,
    Histogram,
    MeterProvider,
    ObservableCounter,
    ObservableGauge,
    ObservableUpDownCounter,
    TraceBasedExemplarFilter,
    UpDownCounter,
)
from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    MetricReader,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider, sampling
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)
from prometheus_client import CollectorRegistry

from atoms_otel.base.compat import SDK_GAUGE, ExcludingView, SnapshotPrometheusReader
from atoms_otel.base.scrubbing import Scrubber
from atoms_otel.base.settings import ConfigurationError, Settings
from atoms_otel.otel.exporters import GuardedLogExporter, GuardedMetricExporter, GuardedSpanExporter
from atoms_otel.otel.metrics.exemplars import exemplar_reservoir_factory
from atoms_otel.otel.otlp import otlp_exporter_kwargs
from atoms_otel.otel.processors import ContextLogRecordProcessor, ContextSpanProcessor
from atoms_otel.otel.resource import build_resource, follow_forks

__all__ = ["Pipeline", "build_pipeline"]


@dataclass
class Pipeline:
    """Everything one configure() built; shut down as a unit."""

    resource: Resource
    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    logger_provider: LoggerProvider
    prometheus_reader: SnapshotPrometheusReader
    prometheus_registry: CollectorRegistry
    exports_logs: bool
    destinations: dict[str, str] = field(default_factory=dict)
    exporters: list[Any] = field(default_factory=list)
    """The guarded OTLP exporters: shut down directly when a shutdown deadline passes, which
    aborts their retry loops instead of leaving them running in the background."""

    def force_flush(self, timeout_s: float) -> bool:
        return all(
            _parallel(
                [
                    lambda: self.tracer_provider.force_flush(int(timeout_s * 1000)),
                    lambda: self.meter_provider.force_flush(timeout_s * 1000),
                    lambda: self.logger_provider.force_flush(int(timeout_s * 1000)),
                ],
                timeout_s,
            )
        )

    def shutdown(self, timeout_s: float) -> None:
        """Flush and release everything, in parallel, bounded by ``timeout_s`` overall."""
        done = _parallel(
            [
                self.tracer_provider.shutdown,
                lambda: self.meter_provider.shutdown(timeout_millis=timeout_s * 1000),
                self.logger_provider.shutdown,
            ],
            timeout_s,
        )
        if not all(done):
            for exporter in self.exporters:
                exporter.shutdown()


def _parallel(calls: Sequence[Any], timeout_s: float) -> list[bool]:
    """Run the calls on daemon threads; give up waiting after ``timeout_s`` (an unreachable
    collector must not hold the process hostage at exit)."""
    results: list[bool] = [False] * len(calls)

    def run(index: int) -> None:
        try:
            outcome = calls[index]()
            results[index] = outcome is None or bool(outcome)
        except Exception:
            results[index] = False

    threads = []
    for index in range(len(calls)):
        thread = threading.Thread(target=run, args=(index,), name="atoms-otel-flush", daemon=True)
        try:
            thread.start()
        except RuntimeError:  # too late in interpreter shutdown for threads: do it inline
            run(index)
            continue
        threads.append(thread)
    deadline = time.monotonic() + timeout_s
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    return results


def _cardinality_limits(limit: int) -> dict[type, int]:
    kinds = [Counter, UpDownCounter, Histogram, ObservableCounter, ObservableUpDownCounter, ObservableGauge]
    if SDK_GAUGE is not None:
        kinds.append(SDK_GAUGE)
    return dict.fromkeys(kinds, limit)


def _sampler(settings: Settings) -> sampling.Sampler:
    ratio = settings.trace_sampler_arg if settings.trace_sampler_arg is not None else 1.0
    factories: dict[str, Callable[[], sampling.Sampler]] = {
        "always_on": lambda: sampling.ALWAYS_ON,
        "always_off": lambda: sampling.ALWAYS_OFF,
        "traceidratio": lambda: sampling.TraceIdRatioBased(ratio),
        "parentbased_always_on": lambda: sampling.ParentBased(sampling.ALWAYS_ON),
        "parentbased_always_off": lambda: sampling.ParentBased(sampling.ALWAYS_OFF),
        "parentbased_traceidratio": lambda: sampling.ParentBased(sampling.TraceIdRatioBased(ratio)),
    }
    return factories[settings.trace_sampler]()


def _exemplar_filter(settings: Settings) -> ExemplarFilter:
    """Exemplars link a measurement to the trace it was made in: on /metrics (OpenMetrics) and on
    pushed points. Trace-based by default: only measurements in a sampled span, ~1 µs per histogram
    observation there (counters record outside the trace context unless asked, see
    ``metrics.children``)."""
    choice = settings.metric_exemplar_filter or "trace_based"
    filters: dict[str, Callable[[], ExemplarFilter]] = {
        "trace_based": TraceBasedExemplarFilter,
        "always_on": AlwaysOnExemplarFilter,
        "always_off": AlwaysOffExemplarFilter,
    }
    return filters[choice]()


def _views(histogram_buckets: Mapping[str, Sequence[float]]) -> list[View]:
    """Each instrument matches exactly one view: its own when its buckets are configured, else the
    catch-all. Every view keeps the latest exemplar per histogram bucket (``metrics.exemplars``)."""
    factory = exemplar_reservoir_factory
    views: list[View] = [
        View(
            instrument_name=name,
            aggregation=ExplicitBucketHistogramAggregation(tuple(bounds)),
            exemplar_reservoir_factory=factory,
        )
        for name, bounds in histogram_buckets.items()
    ]
    views.append(
        ExcludingView(
            instrument_name="*", exclude=frozenset(histogram_buckets), exemplar_reservoir_factory=factory
        )
    )
    return views


def _otlp_exporter_classes(protocol: str) -> dict[str, Any]:
    """The exporter classes for ``protocol`` (gRPC is an optional extra)."""
    if protocol == "grpc":
        try:
            from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
            from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        except ImportError:
            raise ConfigurationError(
                "otlp_protocol/OTEL_EXPORTER_OTLP[_<SIGNAL>]_PROTOCOL='grpc' needs the gRPC exporter: "
                "pip install 'atoms-otel[grpc]' (or use http/protobuf, the default)"
            ) from None
    else:
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter  # type: ignore[assignment]
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter  # type: ignore[assignment]
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter  # type: ignore[assignment]
    return {"traces": OTLPSpanExporter, "metrics": OTLPMetricExporter, "logs": OTLPLogExporter}


def _otlp_exporters(settings: Settings, signals: Sequence[str]) -> dict[str, Any]:
    """Each exported signal's exporter class, by that signal's protocol."""
    classes: dict[str, Any] = {}
    for signal in signals:
        classes[signal] = _otlp_exporter_classes(settings.otlp_export(signal).protocol)[signal]
    return classes


@dataclass
class _Plan:
    """What the three provider builders share."""

    settings: Settings
    scrubber: Scrubber | None
    destinations: dict[str, str]
    exporter_classes: dict[str, Any]
    simple_export: bool
    histogram_buckets: dict[str, Sequence[float]]
    otlp_exporters: list[Any] = field(default_factory=list)

    def otlp(self, signal: str) -> Any:
        """A new OTLP exporter for ``signal``."""
        export = self.settings.otlp_export(signal)
        return self.exporter_classes[signal](**otlp_exporter_kwargs(export, self.destinations[signal]))


def build_pipeline(
    settings: Settings,
    scrubber: Scrubber | None,
    *,
    span_exporters: Sequence[SpanExporter] = (),
    span_processors: Sequence[SpanProcessor] = (),
    metric_readers: Sequence[MetricReader] = (),
    log_exporters: Sequence[LogRecordExporter] = (),
    log_processors: Sequence[LogRecordProcessor] = (),
    simple_export: bool = False,
    histogram_buckets: Mapping[str, Sequence[float]] | None = None,
) -> Pipeline:
    """Build (but do not install) the providers. Raises ConfigurationError before creating anything
    that runs threads, so a bad setting leaves nothing behind."""
    destinations = {s: e for s in ("traces", "metrics", "logs") if (e := settings.otlp_signal_endpoint(s))}
    exporter_classes = _otlp_exporters(settings, tuple(destinations))
    plan = _Plan(
        settings, scrubber, destinations, exporter_classes, simple_export, dict(histogram_buckets or {})
    )
    resource = build_resource(settings)
    registry = CollectorRegistry(auto_describe=True)
    prometheus_reader = SnapshotPrometheusReader(
        registry=registry,
        scope_info_enabled=False,
        cardinality_limits=_cardinality_limits(settings.metric_cardinality_limit),
    )
    pipeline = Pipeline(
        resource=resource,
        tracer_provider=_tracer_provider(plan, resource, span_processors, span_exporters),
        meter_provider=_meter_provider(plan, resource, [prometheus_reader, *metric_readers]),
        logger_provider=_logger_provider(plan, resource, log_processors, log_exporters),
        prometheus_reader=prometheus_reader,
        prometheus_registry=registry,
        exports_logs="logs" in destinations
        or bool(log_exporters)
        or bool(log_processors)
        or "console" in (settings.logs_exporter or ()),
        destinations=destinations,
        exporters=plan.otlp_exporters,
    )
    follow_forks(pipeline)
    return pipeline


def _tracer_provider(
    plan: _Plan, resource: Resource, processors: Sequence[SpanProcessor], exporters: Sequence[SpanExporter]
) -> TracerProvider:
    settings, scrubber = plan.settings, plan.scrubber
    provider = TracerProvider(resource=resource, sampler=_sampler(settings), shutdown_on_exit=False)
    provider.add_span_processor(ContextSpanProcessor())
    for processor in processors:
        provider.add_span_processor(processor)
    if "traces" in plan.destinations:
        guarded = GuardedSpanExporter(plan.otlp("traces"), scrubber, plan.destinations["traces"])
        plan.otlp_exporters.append(guarded)
        batch = SimpleSpanProcessor if plan.simple_export else BatchSpanProcessor
        provider.add_span_processor(batch(guarded))
    if settings.console_spans or "console" in (settings.traces_exporter or ()):
        provider.add_span_processor(
            SimpleSpanProcessor(GuardedSpanExporter(ConsoleSpanExporter(), scrubber, "console"))
        )
    for exporter in exporters:
        provider.add_span_processor(
            SimpleSpanProcessor(GuardedSpanExporter(exporter, scrubber, type(exporter).__name__))
        )
    return provider


def _meter_provider(plan: _Plan, resource: Resource, readers: list[MetricReader]) -> MeterProvider:
    settings = plan.settings
    if "metrics" in plan.destinations:
        guarded = GuardedMetricExporter(plan.otlp("metrics"), plan.destinations["metrics"])
        plan.otlp_exporters.append(guarded)
        readers.append(
            PeriodicExportingMetricReader(
                guarded,
                export_interval_millis=settings.metric_export_interval_ms,
                export_timeout_millis=settings.sdk_environment.get("OTEL_METRIC_EXPORT_TIMEOUT")
                or settings.otlp_export("metrics").timeout_s * 1000,
            )
        )
    if "console" in (settings.metrics_exporter or ()):
        readers.append(
            PeriodicExportingMetricReader(
                GuardedMetricExporter(ConsoleMetricExporter(), "console"),
                export_interval_millis=settings.metric_export_interval_ms,
            )
        )
    return MeterProvider(
        resource=resource,
        metric_readers=readers,
        views=_views(plan.histogram_buckets),
        exemplar_filter=_exemplar_filter(settings),
        shutdown_on_exit=False,
    )


def _logger_provider(
    plan: _Plan,
    resource: Resource,
    processors: Sequence[LogRecordProcessor],
    exporters: Sequence[LogRecordExporter],
) -> LoggerProvider:
    provider = LoggerProvider(resource=resource, shutdown_on_exit=False)
    provider.add_log_record_processor(ContextLogRecordProcessor())
    for processor in processors:
        provider.add_log_record_processor(processor)
    if "logs" in plan.destinations:
        guarded = GuardedLogExporter(plan.otlp("logs"), plan.scrubber, plan.destinations["logs"])
        plan.otlp_exporters.append(guarded)
        batch = SimpleLogRecordProcessor if plan.simple_export else BatchLogRecordProcessor
        provider.add_log_record_processor(batch(guarded))
    if "console" in (plan.settings.logs_exporter or ()):
        exporters = [*exporters, ConsoleLogRecordExporter()]
    for exporter in exporters:
        provider.add_log_record_processor(
            SimpleLogRecordProcessor(GuardedLogExporter(exporter, plan.scrubber, type(exporter).__name__))
        )
    return provider
