"""``track_database_operation``: a CLIENT span and the database metrics for each call."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from opentelemetry.semconv.attributes.db_attributes import (
    DB_COLLECTION_NAME,
    DB_OPERATION_NAME,
    DB_SYSTEM_NAME,
)
from opentelemetry.semconv.attributes.error_attributes import ERROR_TYPE
from opentelemetry.trace import SpanKind

from atoms_otel.base import guard as _guard
from atoms_otel.base.semconv import exception_type
from atoms_otel.core.telemetry import Configuration, Telemetry
from atoms_otel.otel.logs import get_logger
from atoms_otel.otel.metrics import NO_TABLE
from atoms_otel.producers.instrument.values import SpanCall, fail_span
from atoms_otel.producers.instrument.wrapping import wrap

__all__ = ["track_database_operation"]

F = TypeVar("F", bound=Callable[..., Any])

_logger = get_logger("atoms_otel.tools")


class _DatabaseProbe:
    def __init__(self, telemetry: Telemetry, operation: str, table: str, system: str) -> None:
        self.telemetry = telemetry
        metrics = telemetry.metrics
        self.queries = metrics.database_queries_total
        self.durations = metrics.database_query_duration_seconds
        self.errors = metrics.errors_total
        self.semconv_duration = metrics.db_client_operation_duration
        self.operation = operation
        self.table = table or NO_TABLE  # the label value; the span leaves the attribute out
        self.span_name = f"{operation} {table}" if table else operation
        self.attributes = {DB_SYSTEM_NAME: system, DB_OPERATION_NAME: operation}
        if table:
            self.attributes[DB_COLLECTION_NAME] = table
        self.semconv_success = self.semconv_duration.bind(self.attributes)  # the common series, bound once
        # Whether db.client.operation.duration is recorded, per configuration: one tuple, replaced whole.
        self._semconv: tuple[Configuration | None, bool] = (None, False)

    def start(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> SpanCall:
        span = self.telemetry.tracer.start_span(
            self.span_name, kind=SpanKind.CLIENT, attributes=self.attributes
        )
        return SpanCall(span, time.perf_counter(), None)

    def _semconv_on(self) -> bool:
        """OTLP metrics on and ``db_client_metrics`` not opted out, for the current configuration."""
        configuration = self.telemetry.configuration
        seen, on = self._semconv
        if configuration is not seen:
            settings = self.telemetry.settings
            pipeline = self.telemetry.pipeline
            on = settings.db_client_metrics and pipeline is not None and "metrics" in pipeline.destinations
            self._semconv = (configuration, on)
        return on

    def _record(self, call: SpanCall, error_type: str | None) -> None:
        duration = time.perf_counter() - call.start
        status = "error" if error_type else "success"
        self.queries.labels(self.operation, self.table, status).inc()
        self.durations.labels(self.operation, self.table).observe(duration)
        if self._semconv_on():
            if error_type:
                self.semconv_duration.observe(duration, {**self.attributes, ERROR_TYPE: error_type})
            else:
                self.semconv_success.record(duration)

    def done(self, call: SpanCall, result: Any) -> None:
        try:
            self._record(call, None)
            call.span.end()
        except Exception as exc:
            _guard.report_internal_error("track_database_operation", exc)

    def fail(self, call: SpanCall, exc: BaseException) -> None:
        try:
            error_type = exception_type(exc)
            self._record(call, error_type)
            self.errors.labels(error_type, "database").inc()
            _logger.error(
                "database %s failed: %s",
                self.span_name,
                error_type,
                exc_info=exc,
                extra_fields={"operation": self.operation, "table": self.table, "error_type": error_type},
            )
            fail_span(call.span, exc, error_type)
        except Exception as internal:
            _guard.report_internal_error("track_database_operation", internal)


def track_database_operation(
    operation_type: str, table: str = "", *, system: str = "other_sql", telemetry: Telemetry
) -> Callable[[F], F]:
    """Track a database call: a CLIENT span ``{operation} {table}`` following the database
    semantic conventions (``db.system.name``, ``db.operation.name``, ``db.collection.name``),
    ``database_queries_total{operation,table,status}`` and
    ``database_query_duration_seconds{operation,table}`` (``table="_none"`` when no table is
    given — never an empty label value). A failure also counts in
    ``errors_total{error_type,source="database"}`` and logs one ERROR line; it is re-raised.

    While metrics are exported by OTLP, each call is also recorded in the semconv histogram
    ``db.client.operation.duration`` (seconds) with the span's ``db.*`` attributes and, on failure,
    ``error.type`` — what OpenTelemetry-native database dashboards read. Opt out with
    ``ATOMS_OTEL_DB_CLIENT_METRICS=false``.

    >>> @track_database_operation("select", "users", system="postgresql")
    ... async def get_user(user_id: str): ...
    """
    if not isinstance(operation_type, str) or not operation_type:
        raise ValueError("operation_type must be a non-empty string such as 'select'")

    def decorate(fn: F) -> F:
        return wrap(fn, _DatabaseProbe(telemetry, operation_type, table, system))

    return decorate
