"""``PerformanceMetric``: one duration, recorded as a log line and a histogram observation."""

from __future__ import annotations

import logging
import time
from types import TracebackType
from typing import Any

from atoms_otel.otel.logs import AtomLogger, get_logger
from atoms_otel.otel.metrics import Histogram, get_metrics_registry

__all__ = ["PerformanceMetric"]


def _histogram() -> Histogram:
    return get_metrics_registry().histogram(
        "operation.duration",
        "Duration of measured operations in seconds, by operation and status",
        unit="s",
        labels=("operation", "status"),
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
        **fields: Any,
    ) -> None:
        self.operation = operation
        self.threshold_ms = threshold_ms
        self.duration_ms: float | None = None
        self._logger = logger or get_logger("atoms_otel.performance")
        self._level = level
        self._fields = fields
        self._start = 0.0

    def record(self, duration_ms: float, *, status: str = "success", **fields: Any) -> None:
        self.duration_ms = duration_ms
        _histogram().observe(duration_ms / 1000.0, {"operation": self.operation, "status": status})
        slow = self.threshold_ms is not None and duration_ms > self.threshold_ms
        level = logging.WARNING if slow else self._level
        if self._logger.is_enabled_for(level):
            self._logger.log(
                level,
                "%s %s in %.1f ms%s",
                self.operation,
                "failed" if status == "error" else "completed",
                duration_ms,
                " (slow)" if slow else "",
                extra_fields={
                    **self._fields,
                    **fields,
                    "operation": self.operation,
                    "duration_ms": round(duration_ms, 3),
                    "status": status,
                    **({"threshold_ms": self.threshold_ms} if slow else {}),
                },
            )

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
