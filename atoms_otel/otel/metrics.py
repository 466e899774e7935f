"""Prometheus-style metric facades over OpenTelemetry instruments, and the pre-configured set.

``Counter``, ``Gauge`` and ``Histogram`` keep the familiar Prometheus surface (``inc``, ``set``,
``observe``, declared label names) while recording into OpenTelemetry instruments, so the same
measurement reaches ``/metrics`` and, when an endpoint is set, the OTLP collector. They may be
created at import time, before ``configure()``: they record into a no-op until it runs, then into
the configured pipeline, and are rebound if ``configure()`` runs again.

Label cardinality is bounded twice: undeclared label names are dropped (logged once), and each
metric keeps at most ``metric_cardinality_limit`` label sets (default 2000) — further label sets are
folded into one series labelled ``otel_metric_overflow="true"``, so memory and ``/metrics`` size stay
bounded whatever values clients send.
"""

from __future__ import annotations

import re
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Final

from opentelemetry import metrics as metrics_api

from atoms_otel.base import guard as _guard

from atoms_otel.otel import proxy as _proxy
from atoms_otel._version import __version__

__all__ = [
    "DURATION_BUCKETS",
    "MCP_DURATION_BUCKETS",
    "Counter",
    "Gauge",
    "Histogram",
    "MetricsRegistry",
    "get_metrics_registry",
    "prometheus_name",
    "record_cache_operation",
    "record_database_query",
    "record_error",
    "record_http_request",
    "record_tool_execution",
]

Labels = Mapping[str, str | int | float | bool]

# OpenTelemetry HTTP semantic-convention buckets, in seconds.
DURATION_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
# The MCP semantic conventions' advice for mcp.*.operation.duration, in seconds.
MCP_DURATION_BUCKETS: Final = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.\-/]{0,254}$")
_PROM_UNSAFE = re.compile(r"[^a-zA-Z0-9:]+")
_UNIT_SUFFIX: Final = {"s": "seconds", "ms": "milliseconds", "By": "bytes", "1": "", "%": "percent"}
_MAX_GAUGE_SERIES: Final = 2000
_MAX_OBSERVED_SERIES: Final = 10_000
_OVERFLOW: Final = frozenset({("otel_metric_overflow", "true")})
_registries: weakref.WeakSet[MetricsRegistry] = weakref.WeakSet()


def prometheus_name(name: str, unit: str = "", kind: str = "gauge") -> str:
    """The name Prometheus shows for an OpenTelemetry instrument (as the exporter derives it)."""
    base = _PROM_UNSAFE.sub("_", name)
    suffix = _UNIT_SUFFIX.get(unit, re.sub(r"\{.*\}", "", unit).strip("_"))
    if kind == "counter" and base.endswith("_total"):
        base = base[: -len("_total")]
    if suffix and not base.endswith("_" + suffix):
        base = f"{base}_{suffix}"
    return base + "_total" if kind == "counter" else base


class _Metric:
    kind: str = ""

    def __init__(
        self,
        name: str,
        description: str = "",
        unit: str = "",
        labels: Sequence[str] = (),
        *,
        registry: MetricsRegistry | None = None,
    ) -> None:
        if not isinstance(name, str) or not _NAME.match(name):
            raise ValueError(
                f"invalid metric name {name!r}: use letters, digits, '_', '.', '-' or '/', "
                "starting with a letter, at most 255 characters"
            )
        if isinstance(labels, str):
            raise TypeError("labels must be a sequence of label names, not a string")
        self.name = name
        self.description = description or name.replace("_", " ").replace(".", " ")
        self.unit = unit
        self.label_names: tuple[str, ...] = tuple(labels)
        self._declared = frozenset(self.label_names) if self.label_names else None
        self.prometheus_name = prometheus_name(name, unit, "counter" if self.kind == "counter" else self.kind)
        self._registry = registry if registry is not None else get_metrics_registry()
        self._instrument: Any = self._create(self._registry.meter)
        self._registry._register(self)

    def _create(self, meter: metrics_api.Meter) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def _labels(self, labels: Labels | None) -> Labels | None:
        """Drop label names that were not declared (bounded cardinality); logged once."""
        if labels is None or self._declared is None or self._declared.issuperset(labels):
            return labels
        undeclared = sorted(set(labels) - self._declared)
        _guard.warn_once(
            f"metric {self.name}",
            f"undeclared labels {undeclared} dropped; declared: {list(self.label_names)}",
        )
        return {k: v for k, v in labels.items() if k in self._declared}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, labels={self.label_names!r})"


def _observations(
    table: dict[frozenset[tuple[str, Any]], float], lock: threading.Lock
) -> list[metrics_api.Observation]:
    """An observed counter's or gauge's in-process values, as the SDK reads them at collection."""
    with lock:
        items = list(table.items())
    return [metrics_api.Observation(value, dict(key) or None) for key, value in items]


class Counter(_Metric):
    """A monotonically increasing count. ``inc(amount=1, labels=None)``.

    >>> orders = Counter("orders_total", "Orders placed", labels=("region",))
    >>> orders.inc(labels={"region": "eu"})

    ``observed=True`` keeps the counts in the process and reports them when metrics are collected
    (an OpenTelemetry *observable* counter): ``inc`` costs a dictionary update under a lock instead
    of an SDK call — for counts taken on every request. Like any counter it starts from zero when
    configure() builds a new pipeline. At most 10000 label sets are kept; later ones are counted in
    one ``otel_metric_overflow="true"`` series.
    """

    kind = "counter"

    def __init__(
        self,
        name: str,
        description: str = "",
        unit: str = "",
        labels: Sequence[str] = (),
        *,
        registry: MetricsRegistry | None = None,
        observed: bool = False,
    ) -> None:
        self._observed = observed
        self._counts: dict[frozenset[tuple[str, Any]], float] = {}
        self._lock = threading.Lock()
        super().__init__(name, description, unit, labels, registry=registry)

    def _create(self, meter: metrics_api.Meter) -> Any:
        if self._observed:
            return meter.create_observable_counter(self.name, [self._observe], self.unit, self.description)
        return meter.create_counter(self.name, self.unit, self.description)

    def inc(self, amount: float = 1, labels: Labels | None = None) -> None:
        if amount < 0:
            _guard.warn_once(f"metric {self.name}", "a counter cannot go down; negative increment ignored")
            return
        declared = self._declared
        if declared is not None and labels is not None and not declared.issuperset(labels):
            labels = self._labels(labels)
        if self._observed:
            key = frozenset(labels.items()) if labels else frozenset()
            with self._lock:
                counts = self._counts
                if key not in counts and len(counts) >= _MAX_OBSERVED_SERIES:
                    key = _OVERFLOW
                counts[key] = counts.get(key, 0) + amount
            return
        self._instrument._real.add(amount, labels)

    def _observe(self, _options: metrics_api.CallbackOptions) -> list[metrics_api.Observation]:
        return _observations(self._counts, self._lock)

    def _rebound(self) -> None:
        # A new pipeline starts every counter from zero; an observed one does too, so that ratios
        # between counters (errors per request) stay true across configure().
        with self._lock:
            self._counts.clear()


class Histogram(_Metric):
    """A distribution (e.g. durations in seconds). ``observe(value, labels=None)``.

    Buckets default to the OpenTelemetry HTTP buckets when ``unit="s"``; pass ``buckets=`` to choose.
    """

    kind = "histogram"

    def __init__(
        self,
        name: str,
        description: str = "",
        unit: str = "",
        labels: Sequence[str] = (),
        *,
        buckets: Sequence[float] | None = None,
        registry: MetricsRegistry | None = None,
    ) -> None:
        if buckets is None and unit == "s":
            buckets = DURATION_BUCKETS
        if buckets is not None:
            buckets = tuple(float(b) for b in buckets)
            if list(buckets) != sorted(set(buckets)):
                raise ValueError(f"histogram {name!r}: buckets must be strictly increasing")
        self.buckets: tuple[float, ...] | None = buckets
        super().__init__(name, description, unit, labels, registry=registry)

    def _create(self, meter: metrics_api.Meter) -> Any:
        return meter.create_histogram(
            self.name, self.unit, self.description, explicit_bucket_boundaries_advisory=self.buckets
        )

    def observe(self, value: float, labels: Labels | None = None) -> None:
        declared = self._declared
        if declared is not None and labels is not None and not declared.issuperset(labels):
            labels = self._labels(labels)
        self._instrument._real.record(value, labels)

    @contextmanager
    def time(self, labels: Labels | None = None) -> Iterator[None]:
        """Observe the duration of a block in seconds."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.observe(time.perf_counter() - start, labels)


class Gauge(_Metric):
    """A value that goes up and down: ``set(value)``, ``inc(amount=1)``, ``dec(amount=1)``.

    Backed by an OpenTelemetry UpDownCounter, so values from many processes add up correctly in
    the collector; ``set`` records the difference from the current value. At most 2000 label sets
    are tracked per gauge; further ones are ignored and logged once.

    ``observed=True`` backs it by an *observable* UpDownCounter instead: the current values are
    read when metrics are collected, so ``inc``/``dec``/``set`` only update a number under a lock
    (about a microsecond, against several for an SDK call) — for values changed on every request.
    """

    kind = "gauge"

    def __init__(
        self,
        name: str,
        description: str = "",
        unit: str = "",
        labels: Sequence[str] = (),
        *,
        registry: MetricsRegistry | None = None,
        observed: bool = False,
    ) -> None:
        self._values: dict[frozenset[tuple[str, Any]], float] = {}
        self._lock = threading.Lock()
        self._observed = observed
        super().__init__(name, description, unit, labels, registry=registry)

    def _create(self, meter: metrics_api.Meter) -> Any:
        if self._observed:
            return meter.create_observable_up_down_counter(
                self.name, [self._observe], self.unit, self.description
            )
        return meter.create_up_down_counter(self.name, self.unit, self.description)

    def _observe(self, _options: metrics_api.CallbackOptions) -> list[metrics_api.Observation]:
        return _observations(self._values, self._lock)

    def _add(self, delta: float | None, labels: Labels | None, target: float | None = None) -> None:
        if self._declared is not None and labels is not None:
            labels = self._labels(labels)
        key = frozenset(labels.items()) if labels else frozenset()
        with self._lock:
            current = self._values.get(key)
            if current is None:
                if len(self._values) >= _MAX_GAUGE_SERIES:
                    _guard.warn_once(
                        f"metric {self.name}", f"more than {_MAX_GAUGE_SERIES} label sets; new ones ignored"
                    )
                    return
                current = 0.0
            if target is not None:
                delta = target - current
            assert delta is not None
            self._values[key] = current + delta
            if delta and not self._observed:
                self._instrument._real.add(delta, labels)

    def set(self, value: float, labels: Labels | None = None) -> None:
        self._add(None, labels, target=value)

    def inc(self, amount: float = 1, labels: Labels | None = None) -> None:
        self._add(amount, labels)

    def dec(self, amount: float = 1, labels: Labels | None = None) -> None:
        self._add(-amount, labels)

    def value(self, labels: Labels | None = None) -> float:
        """The current value for a label set (0 if never set)."""
        with self._lock:
            return self._values.get(frozenset(labels.items()) if labels else frozenset(), 0.0)

    def _rebound(self) -> None:
        # A new pipeline starts from zero; carry the current values over so the gauge stays true.
        if self._observed:  # read at collection time: nothing to carry
            return
        with self._lock:
            for key, value in self._values.items():
                if value:
                    self._instrument._real.add(value, dict(key) or None)


ObservedValues = Callable[[], Mapping[tuple[tuple[str, str], ...], float] | float]


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
    helpers that fill them.
    """

    def __init__(self, meter_name: str = "atoms_otel", *, preconfigured: bool = True) -> None:
        self.meter = _proxy.METER_PROVIDER.get_meter(meter_name, __version__)
        self._metrics: dict[str, _Metric] = {}
        self._lock = threading.Lock()
        _registries.add(self)
        if preconfigured:
            self._create_preconfigured()

    def _register(self, metric: _Metric) -> None:
        with self._lock:
            existing = self._metrics.get(metric.name)
            if existing is not None and existing.kind != metric.kind:
                raise ValueError(f"metric {metric.name!r} already exists as a {existing.kind}")
            self._metrics[metric.name] = metric

    def _get_or_create(self, cls: type[_Metric], name: str, **kwargs: Any) -> Any:
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

    def get(self, name: str) -> _Metric | None:
        """A metric by its OpenTelemetry name (``http.requests``) or Prometheus name
        (``http_requests_total``)."""
        with self._lock:
            metric = self._metrics.get(name)
            if metric is None:
                metric = next((m for m in self._metrics.values() if m.prometheus_name == name), None)
            return metric

    def metrics(self) -> list[_Metric]:
        with self._lock:
            return list(self._metrics.values())

    def _rebound(self) -> None:
        for metric in self.metrics():
            if isinstance(metric, Gauge | Counter):
                metric._rebound()

    # -- pre-configured metrics and their recorders -------------------------------------------

    def _create_preconfigured(self) -> None:
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
        self.tool_executions_total = Counter(
            "tool.executions",
            "Tool executions by tool and status (success or error)",
            labels=("tool", "status"),
            registry=self,
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
            labels=("mcp.method.name", "gen_ai.tool.name", "error.type"),
            buckets=MCP_DURATION_BUCKETS,
            registry=self,
        )
        self.errors_total = Counter(
            "errors",
            "Errors by error type and source",
            labels=("error_type", "source"),
            registry=self,
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

    def record_http_request(self, method: str, path: str, status_code: int, duration_seconds: float) -> None:
        """Count one HTTP request and observe its duration. ``path`` should be the route template."""
        self.http_requests_total.inc(1, {"method": method, "path": path, "status": str(status_code)})
        self.http_request_duration_seconds._instrument._real.record(
            duration_seconds, {"method": method, "path": path}
        )

    def record_tool_execution(
        self, tool: str, duration_seconds: float, success: bool = True, *, status: str | None = None
    ) -> None:
        status = status or ("success" if success else "error")
        labels = {"tool": tool, "status": status}
        self.tool_executions_total._instrument._real.add(1, labels)
        self.tool_execution_duration_seconds._instrument._real.record(duration_seconds, labels)

    def record_error(self, error_type: str, source: str) -> None:
        self.errors_total._instrument._real.add(1, {"error_type": error_type, "source": source})

    def record_database_query(
        self, operation: str, duration_seconds: float, success: bool = True, *, table: str = ""
    ) -> None:
        self.database_queries_total._instrument._real.add(
            1, {"operation": operation, "table": table, "status": "success" if success else "error"}
        )
        self.database_query_duration_seconds._instrument._real.record(
            duration_seconds, {"operation": operation, "table": table}
        )

    def record_cache_operation(self, operation: str, result: str | bool, *, cache: str = "default") -> None:
        """``result`` is ``"hit"``/``"miss"``/``"error"``/``"ok"``, or a bool meaning hit/miss."""
        if isinstance(result, bool):
            result = "hit" if result else "miss"
        self.cache_operations_total._instrument._real.add(
            1, {"operation": operation, "result": result, "cache": cache}
        )


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


def rebind_all() -> None:
    """After configure() swapped the pipeline: carry gauge values over to the new instruments."""
    for registry in list(_registries):
        registry._rebound()


def reset_all() -> None:
    """Forget every gauge's tracked values and every observed counter's counts (the testing
    fixture starts each test from zero)."""
    for registry in list(_registries):
        for metric in registry.metrics():
            if isinstance(metric, Gauge):
                with metric._lock:
                    metric._values.clear()
            elif isinstance(metric, Counter):
                with metric._lock:
                    metric._counts.clear()


def record_http_request(method: str, path: str, status_code: int, duration_seconds: float) -> None:
    """Record one HTTP request in ``http_requests_total`` and ``http_request_duration_seconds``."""
    get_metrics_registry().record_http_request(method, path, status_code, duration_seconds)


def record_tool_execution(
    tool: str, duration_seconds: float, success: bool = True, *, status: str | None = None
) -> None:
    """Record one tool call in ``tool_executions_total`` and ``tool_execution_duration_seconds``."""
    get_metrics_registry().record_tool_execution(tool, duration_seconds, success, status=status)


def record_error(error_type: str, source: str) -> None:
    """Count one error in ``errors_total{error_type,source}``."""
    get_metrics_registry().record_error(error_type, source)


def record_database_query(
    operation: str, duration_seconds: float, success: bool = True, *, table: str = ""
) -> None:
    """Record one database operation in ``database_queries_total`` and its duration histogram."""
    get_metrics_registry().record_database_query(operation, duration_seconds, success, table=table)


def record_cache_operation(operation: str, result: str | bool, *, cache: str = "default") -> None:
    """Count one cache operation in ``cache_operations_total{operation,result,cache}``."""
    get_metrics_registry().record_cache_operation(operation, result, cache=cache)
