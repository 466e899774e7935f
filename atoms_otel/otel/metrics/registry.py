"""``MetricsRegistry``: the metrics atoms_otel records, the pre-configured set and its recorders."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Final

from opentelemetry import metrics as metrics_api
from opentelemetry.semconv.attributes.db_attributes import (
    DB_COLLECTION_NAME,
    DB_OPERATION_NAME,
    DB_SYSTEM_NAME,
)
from opentelemetry.semconv.attributes.error_attributes import ERROR_TYPE
from opentelemetry.semconv.metrics.db_metrics import DB_CLIENT_OPERATION_DURATION

from atoms_otel._version import __version__
from atoms_otel.base import first_use
from atoms_otel.base import guard as _guard
from atoms_otel.otel import proxy as _proxy
from atoms_otel.otel.metrics.instruments import Counter, Gauge, Histogram
from atoms_otel.otel.metrics.metric import _Metric, use_default_registry
from atoms_otel.otel.metrics.naming import MCP_DURATION_BUCKETS, MCP_OPERATION_LABELS

__all__ = [
    "DB_DURATION_BUCKETS",
    "NO_TABLE",
    "MetricsRegistry",
    "ObservedValues",
    "get_metrics_registry",
    "rebind_all",
    "record_cache_operation",
    "record_database_query",
    "record_error",
    "record_http_request",
    "record_tool_execution",
    "reset_all",
]

NO_TABLE: Final = "_none"
"""The ``table`` label of a database operation given no table: never an empty label value."""

DB_DURATION_BUCKETS: Final = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0)
"""The bucket boundaries the database semantic conventions advise for ``db.client.operation.duration``."""

ObservedValues = Callable[[], Mapping[tuple[tuple[str, str], ...], float] | float]

_registries: weakref.WeakSet[MetricsRegistry] = weakref.WeakSet()


def _observer(
    component: str, callback: ObservedValues
) -> Callable[[metrics_api.CallbackOptions], Iterator[metrics_api.Observation]]:
    def observe(_options: metrics_api.CallbackOptions) -> Iterator[metrics_api.Observation]:
        try:
            values = callback()
            if isinstance(values, Mapping):
                observations = [metrics_api.Observation(v, dict(k)) for k, v in values.items()]
            else:
                observations = [metrics_api.Observation(values)]
        except Exception as exc:
            _guard.report_internal_error(component, exc)
            return iter(())
        return iter(observations)

    return observe


class MetricsRegistry:
    """The metrics atoms_otel records, by name, plus any you create through it.

    The default registry (:func:`get_metrics_registry`) holds the pre-configured metrics named in
    the contract — ``http_requests_total``, ``http_request_duration_seconds``,
    ``tool_executions_total``, ``tool_execution_duration_seconds``, ``errors_total``,
    ``active_connections``, ``database_queries_total``, ``database_query_duration_seconds``,
    ``cache_operations_total``, ``mcp_server_operation_duration_seconds`` — and the ``record_*``
    helpers that fill them; and the semconv ``db.client.operation.duration``, which
    ``track_database_operation`` records only while metrics are exported by OTLP. Hot paths record
    through their cached children: ``registry.errors_total.labels(error_type, source).inc()`` costs
    one dictionary lookup more than the SDK call.
    """

    def __init__(self, meter_name: str = "atoms_otel", *, preconfigured: bool = True) -> None:
        self.meter = _proxy.METER_PROVIDER.get_meter(meter_name, __version__)
        self._metrics: dict[str, _Metric[Any]] = {}
        self._lock = threading.Lock()
        _registries.add(self)
        if preconfigured:
            self._create_http_metrics()
            self._create_tool_metrics()
            self._create_resource_metrics()
            self._create_semconv_metrics()

    def _register(self, metric: _Metric[Any]) -> None:
        with self._lock:
            existing = self._metrics.get(metric.name)
            if existing is not None and existing.kind != metric.kind:
                raise ValueError(f"metric {metric.name!r} already exists as a {existing.kind}")
            self._metrics[metric.name] = metric

    def _get_or_create(self, cls: type[_Metric[Any]], name: str, **kwargs: Any) -> Any:
        with self._lock:
            existing = self._metrics.get(name)
        if existing is not None:
            if type(existing) is not cls:
                raise ValueError(f"metric {name!r} already exists as a {existing.kind}")
            return existing
        return cls(name, registry=self, **kwargs)

    def counter(
        self, name: str, description: str = "", unit: str = "", labels: Sequence[str] = ()
    ) -> Counter:
        """Get the counter called ``name``, creating it on first use."""
        return self._get_or_create(Counter, name, description=description, unit=unit, labels=labels)  # type: ignore[no-any-return]

    def gauge(self, name: str, description: str = "", unit: str = "", labels: Sequence[str] = ()) -> Gauge:
        return self._get_or_create(Gauge, name, description=description, unit=unit, labels=labels)  # type: ignore[no-any-return]

    def histogram(
        self,
        name: str,
        description: str = "",
        unit: str = "",
        labels: Sequence[str] = (),
        buckets: Sequence[float] | None = None,
    ) -> Histogram:
        return self._get_or_create(  # type: ignore[no-any-return]
            Histogram, name, description=description, unit=unit, labels=labels, buckets=buckets
        )

    def observable_gauge(
        self, name: str, callback: ObservedValues, description: str = "", unit: str = ""
    ) -> metrics_api.ObservableGauge:
        """A gauge read at collection time. ``callback()`` returns a number, or a mapping from
        label tuples (``(("component", "db"),)``) to numbers. A failing callback is contained."""
        return self.meter.create_observable_gauge(
            name, [_observer(f"observable gauge {name}", callback)], unit, description or name
        )

    def observable_counter(
        self, name: str, callback: ObservedValues, description: str = "", unit: str = ""
    ) -> metrics_api.ObservableCounter:
        """A monotonic count read at collection time (``callback`` as for :meth:`observable_gauge`)."""
        return self.meter.create_observable_counter(
            name, [_observer(f"observable counter {name}", callback)], unit, description or name
        )

    def get(self, name: str) -> _Metric[Any] | None:
        """A metric by its OpenTelemetry name (``http.requests``) or Prometheus name
        (``http_requests_total``)."""
        with self._lock:
            metric = self._metrics.get(name)
            if metric is None:
                metric = next((m for m in self._metrics.values() if m.prometheus_name == name), None)
            return metric

    def metrics(self) -> list[_Metric[Any]]:
        with self._lock:
            return list(self._metrics.values())

    def _rebound(self) -> None:
        for metric in self.metrics():
            metric._rebound()

    # -- pre-configured metrics and their recorders -------------------------------------------

    def _create_http_metrics(self) -> None:
        self.http_requests_total = Counter(
            "http.requests",
            "Total HTTP requests by method, route template and status code",
            labels=("method", "path", "status"),
            registry=self,
            observed=True,  # counted on every request: kept in-process, read at collection
        )
        self.http_request_duration_seconds = Histogram(
            "http.request.duration",
            "HTTP request latency in seconds, by method and route template",
            unit="s",
            labels=("method", "path"),
            registry=self,
        )

    def _create_tool_metrics(self) -> None:
        self.tool_executions_total = Counter(
            "tool.executions",
            "Tool executions by tool and status (success or error)",
            labels=("tool", "status"),
            registry=self,
            observed=True,  # counted on every tool call: kept in-process, read at collection
        )
        self.tool_execution_duration_seconds = Histogram(
            "tool.execution.duration",
            "Tool execution time in seconds, by tool",
            unit="s",
            labels=("tool", "status"),
            buckets=MCP_DURATION_BUCKETS,
            registry=self,
        )
        self.mcp_server_operation_duration = Histogram(
            "mcp.server.operation.duration",
            "MCP request duration in seconds as the server sees it, by MCP method, tool and error type",
            unit="s",
            labels=("mcp.method.name", "gen_ai.tool.name", "error.type", *MCP_OPERATION_LABELS),
            buckets=MCP_DURATION_BUCKETS,
            registry=self,
        )

    def _create_resource_metrics(self) -> None:
        self.errors_total = Counter(
            "errors", "Errors by error type and source", labels=("error_type", "source"), registry=self
        )
        self.active_connections = Gauge(
            "active_connections",
            "HTTP requests currently being served",
            registry=self,
            observed=True,  # changed twice per request: read at collection, not pushed
        )
        self.database_queries_total = Counter(
            "database.queries",
            "Database operations by operation, table and status",
            labels=("operation", "table", "status"),
            registry=self,
        )
        self.database_query_duration_seconds = Histogram(
            "database.query.duration",
            "Database operation time in seconds, by operation and table",
            unit="s",
            labels=("operation", "table"),
            registry=self,
        )
        self.cache_operations_total = Counter(
            "cache.operations",
            "Cache operations by operation and result (hit, miss, error, ok)",
            labels=("operation", "result", "cache"),
            registry=self,
        )
        self.observable_counter(
            "atoms_otel.internal_errors",
            lambda: {(("component", name),): n for name, n in _guard.internal_error_counts().items()},
            "Failures inside atoms_otel that were contained (the application was unaffected)",
        )

    def _create_semconv_metrics(self) -> None:
        self.db_client_operation_duration = Histogram(
            DB_CLIENT_OPERATION_DURATION,
            "Duration of database client operations.",
            unit="s",
            labels=(DB_SYSTEM_NAME, DB_OPERATION_NAME, DB_COLLECTION_NAME, ERROR_TYPE),
            buckets=DB_DURATION_BUCKETS,
            registry=self,
        )

    def record_http_request(self, method: str, path: str, status_code: int, duration_seconds: float) -> None:
        """Count one HTTP request and observe its duration. ``path`` should be the route template."""
        self.http_requests_total.labels(method, path, str(status_code)).inc()
        self.http_request_duration_seconds.labels(method, path).observe(duration_seconds)

    def record_tool_execution(
        self, tool: str, duration_seconds: float, success: bool = True, *, status: str | None = None
    ) -> None:
        status = status or ("success" if success else "error")
        self.tool_executions_total.labels(tool, status).inc()
        self.tool_execution_duration_seconds.labels(tool, status).observe(duration_seconds)

    def record_error(self, error_type: str, source: str) -> None:
        self.errors_total.labels(error_type, source).inc()

    def record_database_query(
        self, operation: str, duration_seconds: float, success: bool = True, *, table: str = ""
    ) -> None:
        status = "success" if success else "error"
        self.database_queries_total.labels(operation, _table(table), status).inc()
        self.database_query_duration_seconds.labels(operation, _table(table)).observe(duration_seconds)

    def record_cache_operation(self, operation: str, result: str | bool, *, cache: str = "default") -> None:
        """``result`` is ``"hit"``/``"miss"``/``"error"``/``"ok"``, or a bool meaning hit/miss."""
        if isinstance(result, bool):
            result = "hit" if result else "miss"
        self.cache_operations_total.labels(operation, result, cache or "default").inc()


def _table(table: str) -> str:
    return table or NO_TABLE


_default_registry: MetricsRegistry | None = None
_default_lock = threading.Lock()


def get_metrics_registry() -> MetricsRegistry:
    """The process-wide registry holding the pre-configured metrics."""
    global _default_registry
    if _default_registry is None:
        with _default_lock:
            if _default_registry is None:
                _default_registry = MetricsRegistry()
    return _default_registry


use_default_registry(get_metrics_registry)


def rebind_all() -> None:
    """After configure() swapped the pipeline: carry gauge values over to the new instruments."""
    for registry in list(_registries):
        registry._rebound()


def reset_all() -> None:
    """Forget every gauge's tracked values and every observed counter's counts (the testing
    fixture starts each test from zero)."""
    for registry in list(_registries):
        for metric in registry.metrics():
            metric._reset()


def record_http_request(method: str, path: str, status_code: int, duration_seconds: float) -> None:
    """Record one HTTP request in ``http_requests_total`` and ``http_request_duration_seconds``."""
    if first_use.pending:
        first_use.run()
    get_metrics_registry().record_http_request(method, path, status_code, duration_seconds)


def record_tool_execution(
    tool: str, duration_seconds: float, success: bool = True, *, status: str | None = None
) -> None:
    """Record one tool call in ``tool_executions_total`` and ``tool_execution_duration_seconds``."""
    if first_use.pending:
        first_use.run()
    get_metrics_registry().record_tool_execution(tool, duration_seconds, success, status=status)


def record_error(error_type: str, source: str) -> None:
    """Count one error in ``errors_total{error_type,source}``."""
    if first_use.pending:
        first_use.run()
    get_metrics_registry().record_error(error_type, source)


def record_database_query(
    operation: str, duration_seconds: float, success: bool = True, *, table: str = ""
) -> None:
    """Record one database operation in ``database_queries_total`` and its duration histogram."""
    if first_use.pending:
        first_use.run()
    get_metrics_registry().record_database_query(operation, duration_seconds, success, table=table)


def record_cache_operation(operation: str, result: str | bool, *, cache: str = "default") -> None:
    """Count one cache operation in ``cache_operations_total{operation,result,cache}``."""
    if first_use.pending:
        first_use.run()
    get_metrics_registry().record_cache_operation(operation, result, cache=cache)
