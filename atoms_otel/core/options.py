"""Option groups for ``configure()`` (``None`` means: the environment, then the default)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import IO

from opentelemetry.sdk._logs import LogRecordProcessor
from opentelemetry.sdk._logs.export import LogRecordExporter
from opentelemetry.sdk.metrics.export import MetricReader
from opentelemetry.sdk.trace import SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter

__all__ = ["AdvancedOptions", "MetricsOptions"]


@dataclass(frozen=True)
class MetricsOptions:
    """Metric pipeline options (``None`` means: environment, then default)."""

    export_interval_ms: int | None = None
    """How often metrics are pushed by OTLP (``OTEL_METRIC_EXPORT_INTERVAL``, default 10000)."""

    cardinality_limit: int | None = None
    """Label sets kept per metric before folding into ``otel_metric_overflow="true"``
    (``ATOMS_OTEL_METRIC_CARDINALITY_LIMIT``, default 2000)."""

    def arguments(self) -> dict[str, int | None]:
        """These options as rows of the settings table."""
        return {
            "metric_export_interval_ms": self.export_interval_ms,
            "metric_cardinality_limit": self.cardinality_limit,
        }


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

    flush_on_sigterm: bool = True
    """When configure() runs in the main thread and SIGTERM has its default action, shut down
    (flushing within ``shutdown_timeout_s``) on SIGTERM, then exit by the signal as before."""
