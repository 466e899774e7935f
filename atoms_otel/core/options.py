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

from atoms_otel.base.settings import ConfigurationError

__all__ = ["AdvancedOptions", "MetricsOptions"]


@dataclass(frozen=True)
class MetricsOptions:
    """Metric pipeline options (``None`` means: environment, then default)."""

    export_interval_ms: int | None = None
    """How often metrics are pushed by OTLP (``OTEL_METRIC_EXPORT_INTERVAL``, default 10000)."""

    cardinality_limit: int | None = None
    """Label sets kept per metric before folding into ``otel_metric_overflow="true"``
    (``ATOMS_OTEL_METRIC_CARDINALITY_LIMIT``, default 2000)."""

    http_duration_buckets: Sequence[float] | None = None
    """Bucket bounds (seconds) of ``http_request_duration_seconds`` (default: the OTel HTTP buckets)."""

    tool_duration_buckets: Sequence[float] | None = None
    """Bucket bounds (seconds) of ``tool_execution_duration_seconds`` (default: the MCP buckets)."""

    database_duration_buckets: Sequence[float] | None = None
    """Bucket bounds (seconds) of ``database_query_duration_seconds`` (default: the OTel HTTP buckets)."""

    def buckets(self) -> dict[str, tuple[float, ...]]:
        """Instrument name → bucket bounds, for the histograms whose buckets were chosen.

        Raises:
            ConfigurationError: bounds that are not numbers in strictly increasing order.
        """
        chosen = {
            "http.request.duration": ("http_duration_buckets", self.http_duration_buckets),
            "tool.execution.duration": ("tool_duration_buckets", self.tool_duration_buckets),
            "database.query.duration": ("database_duration_buckets", self.database_duration_buckets),
        }
        return {name: _bounds(option, value) for name, (option, value) in chosen.items() if value is not None}

    def arguments(self) -> dict[str, int | None]:
        """These options as rows of the settings table."""
        return {
            "metric_export_interval_ms": self.export_interval_ms,
            "metric_cardinality_limit": self.cardinality_limit,
        }


def _bounds(option: str, value: Sequence[float]) -> tuple[float, ...]:
    try:
        bounds = tuple(float(b) for b in value if not isinstance(b, bool))
    except (TypeError, ValueError):
        bounds = ()
    if not bounds or len(bounds) != len(list(value)) or list(bounds) != sorted(set(bounds)):
        raise ConfigurationError(
            f"MetricsOptions.{option}={list(value)!r}: expected numbers in strictly increasing order"
        )
    return bounds


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
