"""One timing API over ``operation_duration_seconds{operation,status}``.

:class:`OperationTimer` records one operation's duration into the histogram and logs it — at the
timer's level, or at WARNING / ERROR above its warning / critical threshold. The seed's two names
are thin faces of it: :class:`PerformanceMetric` (a context manager, or ``record(ms)``) and
:func:`measure_performance` (a decorator).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar

from opentelemetry.context import Context

from atoms_otel.base import guard as _guard
from atoms_otel.base.semconv import exception_type
from atoms_otel.otel.logs import AtomLogger, get_logger
from atoms_otel.otel.metrics import Histogram, MetricsRegistry, get_metrics_registry
from atoms_otel.producers.instrument.wrapping import wrap

__all__ = ["OperationTimer", "PerformanceMetric", "measure_performance", "operation_histogram"]

F = TypeVar("F", bound=Callable[..., Any])


def operation_histogram(metrics: MetricsRegistry) -> Histogram:
    """``operation_duration_seconds{operation,status}`` in ``metrics``."""
    return metrics.histogram(
        "operation.duration",
        "Duration of measured operations in seconds, by operation and status",
        unit="s",
        labels=("operation", "status"),
    )


class OperationTimer:
    """Records durations of one operation: the histogram, then one log line.

    Above ``critical_ms`` the line is an ERROR, above ``warning_ms`` a WARNING (both with
    ``threshold_ms``); otherwise it is logged at ``level`` (DEBUG by default, so routine timings
    cost a histogram observation and one level check).
    """

    def __init__(
        self,
        operation: str,
        *,
        metrics: MetricsRegistry,
        warning_ms: float | None = None,
        critical_ms: float | None = None,
        level: int = logging.DEBUG,
        logger: AtomLogger | None = None,
    ) -> None:
        self.operation = operation
        self.warning_ms = warning_ms
        self.critical_ms = critical_ms
        self.level = level
        self.logger = logger or get_logger("atoms_otel.performance")
        histogram = operation_histogram(metrics)
        self._ok = histogram.labels(operation, "success")
        self._error = histogram.labels(operation, "error")

    def _verdict(self, duration_ms: float) -> tuple[int, float | None]:
        if self.critical_ms is not None and duration_ms > self.critical_ms:
            return logging.ERROR, self.critical_ms
        if self.warning_ms is not None and duration_ms > self.warning_ms:
            return logging.WARNING, self.warning_ms
        return self.level, None

    def record(self, duration_ms: float, *, status: str = "success", **fields: Any) -> None:
        """Observe ``duration_ms`` with ``status`` (``success`` or ``error``) and log it."""
        failed = status == "error"
        (self._error if failed else self._ok).observe(duration_ms / 1000.0)
        level, threshold = self._verdict(duration_ms)
        if not self.logger.is_enabled_for(level):
            return
        extra: dict[str, Any] = {
            **fields,
            "operation": self.operation,
            "duration_ms": round(duration_ms, 3),
            "status": status,
        }
        if threshold is not None:
            extra["threshold_ms"] = threshold
        self.logger.log(
            level,
            "%s %s in %.1f ms%s",
            self.operation,
            "failed" if failed else "completed",
            duration_ms,
            "" if threshold is None else (" (slow)" if level < logging.ERROR else " (critical)"),
            extra_fields=extra,
        )


class PerformanceMetric:
    """Time an operation; record it in ``operation_duration_seconds{operation,status}`` and log it.

    As a context manager (sync or async) it times the block, and the status is ``error`` if the
    block raised (the exception propagates unchanged)::

        with PerformanceMetric("load_profile", threshold_ms=200, user="u1"):
            load_profile()

    or record a duration you measured: ``PerformanceMetric("import").record(1234.5)``. Above
    ``threshold_ms`` the line is a WARNING; otherwise it is logged at ``level`` (default DEBUG,
    so routine timings cost a metric observation and one level check).
    """

    def __init__(
        self,
        operation: str,
        *,
        threshold_ms: float | None = None,
        logger: AtomLogger | None = None,
        level: int = logging.DEBUG,
        metrics: MetricsRegistry | None = None,
        **fields: Any,
    ) -> None:
        self.operation = operation
        self.threshold_ms = threshold_ms
        self.duration_ms: float | None = None
        self._timer = OperationTimer(
            operation,
            metrics=metrics if metrics is not None else get_metrics_registry(),
            warning_ms=threshold_ms,
            level=level,
            logger=logger,
        )
        self._fields = fields
        self._start = 0.0

    def record(self, duration_ms: float, *, status: str = "success", **fields: Any) -> None:
        self.duration_ms = duration_ms
        self._timer.record(duration_ms, status=status, **{**self._fields, **fields})

    def __enter__(self) -> PerformanceMetric:
        self._start = time.perf_counter()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        elapsed_ms = (time.perf_counter() - self._start) * 1000.0
        if exc_type is None:
            self.record(elapsed_ms)
        else:
            self.record(elapsed_ms, status="error", error_type=exc_type.__name__)

    async def __aenter__(self) -> PerformanceMetric:
        return self.__enter__()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.__exit__(exc_type, exc, tb)


class _TimedCall:
    __slots__ = ("context", "start")

    def __init__(self, start: float) -> None:
        self.context: Context | None = None
        self.start = start


class _TimerProbe:
    def __init__(self, timer: OperationTimer) -> None:
        self.timer = timer

    def start(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> _TimedCall:
        return _TimedCall(time.perf_counter())

    def done(self, call: _TimedCall, result: Any) -> None:
        try:
            self.timer.record((time.perf_counter() - call.start) * 1000.0)
        except Exception as exc:
            _guard.report_internal_error("measure_performance", exc)

    def fail(self, call: _TimedCall, exc: BaseException) -> None:
        try:
            elapsed_ms = (time.perf_counter() - call.start) * 1000.0
            self.timer.record(elapsed_ms, status="error", error_type=exception_type(exc))
        except Exception as internal:
            _guard.report_internal_error("measure_performance", internal)


def measure_performance(
    name: str,
    threshold_warning_ms: float | None = None,
    threshold_critical_ms: float | None = None,
    *,
    metrics: MetricsRegistry,
) -> Callable[[F], F]:
    """Time every call into ``operation_duration_seconds{operation,status}``.

    A call slower than ``threshold_warning_ms`` logs a WARNING line, slower than
    ``threshold_critical_ms`` an ERROR line (each with ``duration_ms`` and ``threshold_ms``);
    other calls log at DEBUG. Exceptions are timed (``status="error"``) and re-raised unchanged.
    """
    for label, value in (
        ("threshold_warning_ms", threshold_warning_ms),
        ("threshold_critical_ms", threshold_critical_ms),
    ):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float) or value < 0):
            raise ValueError(f"{label} must be a number >= 0, got {value!r}")

    def decorate(fn: F) -> F:
        timer = OperationTimer(
            name, metrics=metrics, warning_ms=threshold_warning_ms, critical_ms=threshold_critical_ms
        )
        return wrap(fn, _TimerProbe(timer))

    return decorate
