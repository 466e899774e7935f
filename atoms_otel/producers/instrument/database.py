"""``track_database_operation``: a CLIENT span and the database metrics for each call."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from opentelemetry.trace import SpanKind

from atoms_otel.base import guard as _guard
from atoms_otel.base.semconv import exception_type
from atoms_otel.core.telemetry import Telemetry
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
        self.operation = operation
        self.table = table or NO_TABLE  # the label value; the span leaves the attribute out
        self.span_name = f"{operation} {table}" if table else operation
        self.attributes = {"db.system.name": system, "db.operation.name": operation}
        if table:
            self.attributes["db.collection.name"] = table

    def start(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> SpanCall:
        span = self.telemetry.tracer.start_span(
            self.span_name, kind=SpanKind.CLIENT, attributes=self.attributes
        )
        return SpanCall(span, time.perf_counter(), None)

    def _record(self, call: SpanCall, status: str) -> None:
        duration = time.perf_counter() - call.start
        self.queries.labels(self.operation, self.table, status).inc()
        self.durations.labels(self.operation, self.table).observe(duration)

    def done(self, call: SpanCall, result: Any) -> None:
        try:
            self._record(call, "success")
            call.span.end()
        except Exception as exc:
            _guard.report_internal_error("track_database_operation", exc)

    def fail(self, call: SpanCall, exc: BaseException) -> None:
        try:
            error_type = exception_type(exc)
            self._record(call, "error")
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

    >>> @track_database_operation("select", "users", system="postgresql")
    ... async def get_user(user_id: str): ...
    """
    if not isinstance(operation_type, str) or not operation_type:
        raise ValueError("operation_type must be a non-empty string such as 'select'")

    def decorate(fn: F) -> F:
        return wrap(fn, _DatabaseProbe(telemetry, operation_type, table, system))

    return decorate
