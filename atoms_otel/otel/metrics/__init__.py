"""Prometheus-style metric facades over OpenTelemetry instruments, and the pre-configured set.

``Counter``, ``Gauge`` and ``Histogram`` keep the familiar Prometheus surface (``inc``, ``set``,
``observe``, declared label names, ``labels(...)`` children) while recording into OpenTelemetry
instruments, so the same measurement reaches ``/metrics`` and, when an endpoint is set, the OTLP
collector. They may be created at import time, before ``configure()``: they record into a no-op
until it runs, then into the configured pipeline, and are rebound if ``configure()`` runs again.

Label cardinality is bounded twice: undeclared label names are dropped (logged once), and each
metric keeps at most ``metric_cardinality_limit`` label sets (default 2000) — further label sets are
folded into one series labelled ``otel_metric_overflow="true"``, so memory and ``/metrics`` size stay
bounded whatever values clients send.

Modules: ``naming`` (names, label values, buckets), ``metric`` (the shared base and its cached
``labels()`` children), ``children`` (the bound children), ``instruments`` (the facades),
``registry`` (``MetricsRegistry``, the pre-configured metrics and the ``record_*`` helpers),
``exemplars`` (the exemplar reservoir and the OpenMetrics output that carries exemplars). This is
the only layer that touches the proxy instruments' SDK delegates.
"""

from __future__ import annotations

from atoms_otel.otel.metrics.children import NO_EXEMPLAR as NO_EXEMPLAR
from atoms_otel.otel.metrics.children import BoundInstrument as BoundInstrument
from atoms_otel.otel.metrics.children import CounterChild as CounterChild
from atoms_otel.otel.metrics.children import GaugeChild as GaugeChild
from atoms_otel.otel.metrics.children import HistogramChild as HistogramChild
from atoms_otel.otel.metrics.children import ObservedCounterChild as ObservedCounterChild
from atoms_otel.otel.metrics.instruments import Counter, Gauge, Histogram
from atoms_otel.otel.metrics.naming import DURATION_BUCKETS, MCP_DURATION_BUCKETS, prometheus_name
from atoms_otel.otel.metrics.naming import Labels as Labels
from atoms_otel.otel.metrics.registry import (
    NO_TABLE,
    MetricsRegistry,
    get_metrics_registry,
    record_cache_operation,
    record_database_query,
    record_error,
    record_http_request,
    record_tool_execution,
)
from atoms_otel.otel.metrics.registry import ObservedValues as ObservedValues
from atoms_otel.otel.metrics.registry import rebind_all as rebind_all
from atoms_otel.otel.metrics.registry import reset_all as reset_all

__all__ = [
    "DURATION_BUCKETS",
    "MCP_DURATION_BUCKETS",
    "NO_TABLE",
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
