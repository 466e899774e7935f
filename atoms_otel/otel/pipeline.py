"""Build the OpenTelemetry pipeline from resolved settings.

Resource → TracerProvider (batch export) · MeterProvider (a Prometheus reader on our own
``CollectorRegistry``, plus a periodic OTLP reader when an endpoint is set) · LoggerProvider (OTLP
when an endpoint is set). With no endpoint nothing connects anywhere. Every exporter is wrapped by a
guard that scrubs secrets and reports failures once.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk._logs import LoggerProvider, LogRecordProcessor
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, LogRecordExporter
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
from opentelemetry.sdk.metrics import _Gauge as SyncGauge
from opentelemetry.sdk.metrics.export import (
    MetricExporter,
    MetricReader,
    MetricsData,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider, sampling
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)
from prometheus_client import CollectorRegistry

from atoms_otel.base import guard as _guard
from atoms_otel.base.settings import ConfigurationError, Settings
from atoms_otel._version import __version__
from atoms_otel.otel.processors import (
    ContextLogRecordProcessor,
    ContextSpanProcessor,
    GuardedLogExporter,
    GuardedMetricExporter,
    GuardedSpanExporter,
)
from atoms_otel.base.scrubbing import Scrubber

__all__ = ["Pipeline", "PrometheusReader", "build_pipeline", "service_instance_id"]

_instance_id = uuid.uuid4().hex


def _new_instance_id() -> None:
    global _instance_id
    _instance_id = uuid.uuid4().hex


# A forked worker (gunicorn --preload, multiprocessing) is a new instance: it gets its own id, so
# series from different workers never collide in the collector.
os.register_at_fork(after_in_child=_new_instance_id)


def service_instance_id() -> str:
    """This process's ``service.instance.id``."""
    return _instance_id


class PrometheusReader(PrometheusMetricReader):
    """The Prometheus reader, which can also hand a snapshot of the data to our own endpoints.

    One reader serves both ``/metrics`` and the JSON snapshot API: every extra reader would add its
    own aggregation work to every measurement.
    """

    def __init__(self, registry: CollectorRegistry, cardinality_limit: int) -> None:
        limits: dict[type, int] = {
            cls: cardinality_limit
            for cls in (
                Counter,
                UpDownCounter,
                Histogram,
                SyncGauge,
                ObservableCounter,
                ObservableUpDownCounter,
                ObservableGauge,
            )
        }
        super().__init__(registry=registry, scope_info_enabled=False, cardinality_limits=limits)
        self._capture = threading.local()
        self._snapshot_lock = threading.Lock()

    def _receive_metrics(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> None:
        if getattr(self._capture, "active", False):
            self._capture.data = metrics_data
            return
        super()._receive_metrics(metrics_data, timeout_millis, **kwargs)

    def snapshot(self) -> MetricsData | None:
        """Collect now and return the data (cumulative) without feeding the Prometheus collector."""
        with self._snapshot_lock:
            self._capture.active = True
            self._capture.data = None
            try:
                self.collect()
                data: MetricsData | None = self._capture.data
                return data
            finally:
                self._capture.active = False
                self._capture.data = None


@dataclass
class Pipeline:
    """Everything one configure() built; shut down as a unit."""

    resource: Resource
    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    logger_provider: LoggerProvider
    prometheus_reader: PrometheusReader
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


def build_resource(settings: Settings) -> Resource:
    attributes: dict[str, Any] = dict(settings.resource_attributes)
    attributes.update(
        {
            "service.name": settings.service_name,
            "service.version": settings.service_version,
            "service.instance.id": service_instance_id(),
            "deployment.environment": settings.environment,
            "deployment.environment.name": settings.environment,
            "telemetry.distro.name": "atoms_otel",
            "telemetry.distro.version": __version__,
        }
    )
    return Resource.create(attributes)


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


def _exemplar_filter(settings: Settings, *, pushes_metrics: bool) -> ExemplarFilter:
    """Exemplars link a measurement to the trace it was made in. The Prometheus text format that
    /metrics serves cannot carry them, so sampling them (~3 µs per histogram observation in a
    sampled span) only pays off when metrics also leave by OTLP or reach another reader."""
    choice = settings.metric_exemplar_filter or ("trace_based" if pushes_metrics else "always_off")
    filters: dict[str, Callable[[], ExemplarFilter]] = {
        "trace_based": TraceBasedExemplarFilter,
        "always_on": AlwaysOnExemplarFilter,
        "always_off": AlwaysOffExemplarFilter,
    }
    return filters[choice]()


def _otlp_exporters(settings: Settings) -> dict[str, Any]:
    """The exporter classes for the configured protocol (gRPC is an optional extra)."""
    if settings.otlp_protocol == "grpc":
        try:
            from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
            from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        except ImportError:
            raise ConfigurationError(
                "otlp_protocol/OTEL_EXPORTER_OTLP_PROTOCOL='grpc' needs the gRPC exporter: "
                "pip install 'atoms-otel[grpc]' (or use http/protobuf, the default)"
            ) from None
    else:
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter  # type: ignore[assignment]
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter  # type: ignore[assignment]
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter  # type: ignore[assignment]
    return {"traces": OTLPSpanExporter, "metrics": OTLPMetricExporter, "logs": OTLPLogExporter}


def _otlp_kwargs(settings: Settings, endpoint: str) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"endpoint": endpoint, "timeout": settings.otlp_timeout_s}
    if settings.otlp_headers:
        kwargs["headers"] = dict(settings.otlp_headers)
    if settings.otlp_protocol == "grpc":
        kwargs["insecure"] = endpoint.startswith("http://")
        kwargs["headers"] = tuple((kwargs.get("headers") or {}).items()) or None
    return kwargs


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
) -> Pipeline:
    """Build (but do not install) the providers. Raises ConfigurationError before creating anything
    that runs threads, so a bad setting leaves nothing behind."""
    exporters = _otlp_exporters(settings) if settings.exporting else {}
    resource = build_resource(settings)
    destinations = {s: e for s in ("traces", "metrics", "logs") if (e := settings.otlp_signal_endpoint(s))}
    Processor = SimpleSpanProcessor if simple_export else BatchSpanProcessor
    otlp_exporters: list[Any] = []

    tracer_provider = TracerProvider(resource=resource, sampler=_sampler(settings), shutdown_on_exit=False)
    tracer_provider.add_span_processor(ContextSpanProcessor())
    for processor in span_processors:
        tracer_provider.add_span_processor(processor)
    if "traces" in destinations:
        guarded_spans = GuardedSpanExporter(
            exporters["traces"](**_otlp_kwargs(settings, destinations["traces"])),
            scrubber,
            destinations["traces"],
        )
        otlp_exporters.append(guarded_spans)
        tracer_provider.add_span_processor(Processor(guarded_spans))
    if settings.console_spans:
        tracer_provider.add_span_processor(
            SimpleSpanProcessor(GuardedSpanExporter(ConsoleSpanExporter(), scrubber, "console"))
        )
    for span_exporter in span_exporters:
        tracer_provider.add_span_processor(
            SimpleSpanProcessor(GuardedSpanExporter(span_exporter, scrubber, type(span_exporter).__name__))
        )

    registry = CollectorRegistry(auto_describe=True)
    prometheus_reader = PrometheusReader(registry, settings.metric_cardinality_limit)
    readers: list[MetricReader] = [prometheus_reader, *metric_readers]
    if "metrics" in destinations:
        metric_exporter: MetricExporter = exporters["metrics"](
            **_otlp_kwargs(settings, destinations["metrics"])
        )
        guarded_metrics = GuardedMetricExporter(metric_exporter, destinations["metrics"])
        otlp_exporters.append(guarded_metrics)
        readers.append(
            PeriodicExportingMetricReader(
                guarded_metrics,
                export_interval_millis=settings.metric_export_interval_ms,
                export_timeout_millis=settings.otlp_timeout_s * 1000,
            )
        )
    meter_provider = MeterProvider(
        resource=resource,
        metric_readers=readers,
        exemplar_filter=_exemplar_filter(
            settings, pushes_metrics="metrics" in destinations or bool(metric_readers)
        ),
        shutdown_on_exit=False,
    )

    logger_provider = LoggerProvider(resource=resource, shutdown_on_exit=False)
    logger_provider.add_log_record_processor(ContextLogRecordProcessor())
    for log_processor in log_processors:
        logger_provider.add_log_record_processor(log_processor)
    LogProcessor = _simple_log_processor() if simple_export else BatchLogRecordProcessor
    if "logs" in destinations:
        guarded_logs = GuardedLogExporter(
            exporters["logs"](**_otlp_kwargs(settings, destinations["logs"])), scrubber, destinations["logs"]
        )
        otlp_exporters.append(guarded_logs)
        logger_provider.add_log_record_processor(LogProcessor(guarded_logs))
    for extra_exporter in log_exporters:
        logger_provider.add_log_record_processor(
            _simple_log_processor()(
                GuardedLogExporter(extra_exporter, scrubber, type(extra_exporter).__name__)
            )
        )
    exports_logs = "logs" in destinations or bool(log_exporters) or bool(log_processors)
    pipeline = Pipeline(
        resource=resource,
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
        logger_provider=logger_provider,
        prometheus_reader=prometheus_reader,
        prometheus_registry=registry,
        exports_logs=exports_logs,
        destinations=destinations,
        exporters=otlp_exporters,
    )
    _follow_forks(pipeline)
    return pipeline


def _follow_forks(pipeline: Pipeline) -> None:
    """A worker forked after configure() (gunicorn --preload) is a new instance: give the
    pipeline it inherited that worker's ``service.instance.id``.

    Registered after the providers were built, so it runs after the SDK's own fork handlers
    (registration order), which re-create the providers' locks and batch threads first.
    """
    reference = weakref.ref(pipeline)

    def after_in_child() -> None:
        inherited = reference()
        if inherited is None:
            return
        with _guard.guard("fork: new service.instance.id"):
            update = Resource({"service.instance.id": service_instance_id()})
            inherited.tracer_provider._update_resource(update)
            inherited.meter_provider._update_resource(update)
            inherited.logger_provider._update_resource(update)
            inherited.resource = inherited.resource.merge(update)
            # target_info is built once from the first collection: rebuild it with the new id.
            inherited.prometheus_reader._collector._target_info = None

    os.register_at_fork(after_in_child=after_in_child)


def _simple_log_processor() -> Any:
    from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor

    return SimpleLogRecordProcessor
