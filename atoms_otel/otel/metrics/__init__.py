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
``registry`` (``MetricsRegistry``, the pre-configured metrics and the ``record_*`` helpers). This is
the only layer that touches the proxy instruments' SDK delegates.
"""

from __future__ import annotations

import sys
import types
from typing import Any

from atoms_otel.otel.metrics import instruments as _instruments
from atoms_otel.otel.metrics.children import NO_EXEMPLAR as NO_EXEMPLAR
from atoms_otel.otel.metrics.children import CounterChild as CounterChild
from atoms_otel.otel.metrics.children import GaugeChild as GaugeChild
from atoms_otel.otel.metrics.children import HistogramChild as HistogramChild
from atoms_otel.otel.metrics.children import ObservedCounterChild as ObservedCounterChild
from atoms_otel.otel.metrics.instruments import _MAX_GAUGE_SERIES as _MAX_GAUGE_SERIES
from atoms_otel.otel.metrics.instruments import _MAX_OBSERVED_SERIES as _MAX_OBSERVED_SERIES
from atoms_otel.otel.metrics.instruments import Counter, Gauge, Histogram
from atoms_otel.otel.metrics.naming import DURATION_BUCKETS, MCP_DURATION_BUCKETS, prometheus_name
from atoms_otel.otel.metrics.naming import Labels as Labels
from atoms_otel.otel.metrics.registry import (
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

_LIMITS = frozenset({"_MAX_GAUGE_SERIES", "_MAX_OBSERVED_SERIES"})


class _Package(types.ModuleType):
    """Setting a series limit here (tests do: ``monkeypatch.setattr(metrics, "_MAX_OBSERVED_SERIES",
    3)``) sets it in ``instruments``, the module that reads it."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _LIMITS:
            setattr(_instruments, name, value)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
