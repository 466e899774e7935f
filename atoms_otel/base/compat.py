"""Every use of a third-party private name, in one place, each with a fallback.

atoms_otel builds on public APIs wherever they exist. Where the only way to do something is a
private name of FastAPI or the OpenTelemetry SDK, it is reached from here and nowhere else, with
the versions it was tested on and what happens when a future version removes it: the feature
degrades (documented below); the application never breaks.

Tested on: fastapi 0.165, opentelemetry-api/sdk 1.45, opentelemetry-exporter-prometheus 0.66b2,
mcp 2.3
(pyproject caps these at the newest minor tested).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping, MutableMapping
from time import time_ns
from typing import Any, Final

from opentelemetry import context as otel_context
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics.export import MetricExporter, MetricsData
from opentelemetry.sdk.metrics.view import View
from opentelemetry.sdk.resources import Resource

__all__ = [
    "API_GAUGE",
    "SDK_GAUGE",
    "SUPPRESS_INSTRUMENTATION_KEYS",
    "BoundSeries",
    "ExcludingView",
    "SnapshotPrometheusReader",
    "accepts",
    "bind_series",
    "disable_fastapi_native_telemetry",
    "exporter_preferences",
    "mcp_connection",
    "new_route_tracker",
    "reset_target_info",
    "update_resource",
]

# -- OpenTelemetry API 1.45: the synchronous Gauge and the suppression keys ----------------------
# Fallback: without the private Gauge classes, proxies and cardinality limits skip gauges; without
# the suppression keys, keys of our own are used (our probes are then only unsuppressed for
# third-party instrumentations that read the SDK's keys).
try:
    from opentelemetry.metrics import _Gauge as API_GAUGE
except ImportError:  # pragma: no cover - depends on the installed API
    from opentelemetry.metrics import Instrument as API_GAUGE  # type: ignore[assignment]
try:
    from opentelemetry.sdk.metrics import _Gauge as SDK_GAUGE
except ImportError:  # pragma: no cover
    SDK_GAUGE = None  # type: ignore[assignment,misc]

SUPPRESS_INSTRUMENTATION_KEYS: Final = (
    getattr(otel_context, "_SUPPRESS_INSTRUMENTATION_KEY", None)
    or otel_context.create_key("suppress_instrumentation"),
    getattr(otel_context, "_SUPPRESS_HTTP_INSTRUMENTATION_KEY", None)
    or otel_context.create_key("suppress_http_instrumentation"),
)
"""The context keys that tell instrumentations (httpx, requests, ...) to record nothing."""


# -- FastAPI 0.165: native telemetry and the route it reports -----------------------------------
# Fallback: an app whose native telemetry cannot be turned off keeps it (we then enrich its server
# span instead of opening a second one); without the route tracker, the route template comes from
# Starlette's ``scope["route"]``.
try:
    from fastapi.telemetry._api import _RequestTelemetry as _RouteTracker
except ImportError:  # pragma: no cover - depends on the installed FastAPI
    _RouteTracker = None  # type: ignore[assignment,misc]

_NATIVE_OFF: Final = {"tracing": False, "metrics": False, "logs": False}


def disable_fastapi_native_telemetry(app: Any) -> bool:
    """Turn FastAPI's own server span, metrics and operation spans off for ``app``."""
    config = getattr(app, "_telemetry", None)
    if not isinstance(config, dict):
        return False
    config.update(_NATIVE_OFF)
    return True


def new_route_tracker(scope: MutableMapping[str, Any]) -> Any:
    """An object FastAPI's router reports the selected route template to (``.route``), or None."""
    if _RouteTracker is None:
        return None
    try:
        prefix = scope.get("app_root_path", scope.get("root_path", "")).rstrip("/")
        return _RouteTracker(span=None, span_method="", data=None, _mount_prefix=prefix)
    except TypeError:  # pragma: no cover - FastAPI changed the private signature
        return None


# -- OpenTelemetry SDK 1.45: a forked worker's resource, exporter preferences --------------------
# Fallback: a worker forked after configure() keeps the parent's service.instance.id; a wrapped
# metric exporter uses the SDK's default temporality and aggregation.


# -- OpenTelemetry SDK 1.45: a bound series recorded straight into its aggregations -------------
# ``Histogram.record`` / ``Counter.add`` build and clean a Measurement, copy and hash the attribute
# dictionary, and look its aggregation up again in every reader's storage: ~5 µs for what is, once
# the series is known, a bucket increment. A BoundSeries resolves those aggregations once (through
# the SDK's own lookup, under its lock, so cardinality limits and overflow behave the same) and then
# calls them as the SDK does, with the same Measurement. It re-resolves when configure() swaps the
# instrument or a reader is added. Fallback: with another SDK layout, a view that keeps only some
# attributes, or a reader that drops its aggregations at each collection (delta temporality), no
# BoundSeries is made and measurements go through the public API: same output, the SDK's cost.
try:
    from opentelemetry.sdk.metrics._internal._view_instrument_match import (
        _hash_attributes as _sdk_hash_attributes,
    )
    from opentelemetry.sdk.metrics._internal.measurement import Measurement as _SdkMeasurement
except ImportError:  # pragma: no cover - depends on the installed SDK
    _sdk_hash_attributes = None  # type: ignore[assignment]
    _SdkMeasurement = None  # type: ignore[assignment,misc]

_set = object.__setattr__


class BoundSeries:
    """One attribute set of one SDK counter or histogram, bound to its aggregations."""

    __slots__ = ("_aggregations", "_attributes", "_filter", "_storages", "instrument")

    def __init__(
        self, instrument: Any, attributes: dict[str, Any], storages: Any, aggregations: list[Any], sample: Any
    ) -> None:
        self.instrument = instrument
        self._attributes = attributes
        self._storages = storages
        self._aggregations = aggregations
        self._filter = sample

    def valid_for(self, instrument: Any) -> bool:
        """Still the aggregations ``instrument`` records into (same instrument, same readers)."""
        return (
            instrument is self.instrument
            and instrument._measurement_consumer._reader_storages is self._storages
            and instrument._is_enabled()
        )

    def record(self, value: float, context: Any) -> None:
        """Aggregate ``value`` as the SDK would. Only for values the SDK accepts (see ``accepts``)."""
        now = time_ns()
        measurement = _SdkMeasurement(value, now, self.instrument, context, None)
        _set(measurement, "attributes", self._attributes)  # already clean: skip the copy
        sample = self._filter.should_sample(value, now, self._attributes, context)
        for aggregation in self._aggregations:
            aggregation.aggregate(measurement, sample)


def accepts(value: float) -> bool:
    """A value the SDK records without a warning: not negative, finite (NaN is neither)."""
    return 0 <= value < math.inf


def bind_series(instrument: Any, attributes: Mapping[str, Any]) -> BoundSeries | None:
    """The bound series of ``instrument`` (an SDK counter or histogram) for ``attributes``, or
    None when it cannot be bound (see above): then record through the public API."""
    plain = all(isinstance(value, str | bool | int | float) for value in attributes.values())
    if _sdk_hash_attributes is None or not plain:
        return None
    try:
        if not instrument._is_enabled():  # a meter turned off by a configurator: the SDK's own path
            return None
        consumer = instrument._measurement_consumer
        storages = consumer._reader_storages
        sample = consumer._sdk_config.exemplar_filter
        clean = dict(attributes)
        key = _sdk_hash_attributes(clean)
        aggregations = []
        for storage in storages.values():
            for match in storage._get_or_init_view_instrument_match(instrument):
                if match._reset_on_collect or match._view._attribute_keys is not None:
                    return None
                with match._lock:
                    aggregations.append(match._get_or_create_aggregation(key, dict(clean)))
    except (AttributeError, TypeError):  # pragma: no cover - another SDK layout
        return None
    return BoundSeries(instrument, clean, storages, aggregations, sample)


def update_resource(providers: tuple[Any, ...], update: Resource) -> None:
    """Merge ``update`` into the resource of already-built SDK providers."""
    for provider in providers:
        merge = getattr(provider, "_update_resource", None)
        if callable(merge):
            merge(update)


def reset_target_info(reader: PrometheusMetricReader) -> None:
    """Make the Prometheus reader rebuild ``target_info`` (built once, from the first collection)."""
    collector = getattr(reader, "_collector", None)
    if collector is not None and hasattr(collector, "_target_info"):
        collector._target_info = None


def exporter_preferences(exporter: MetricExporter) -> dict[str, Any]:
    """The temporality and aggregation a metric exporter asked for (to wrap it faithfully)."""
    return {
        "preferred_temporality": getattr(exporter, "_preferred_temporality", None),
        "preferred_aggregation": getattr(exporter, "_preferred_aggregation", None),
    }


# -- opentelemetry-exporter-prometheus 0.66b2: one reader for /metrics and for JSON snapshots ----
# Fallback: if the reader no longer routes collections through _receive_metrics, snapshot() still
# works but also feeds the Prometheus collector (harmless: it serves the latest data anyway), and
# collect_families() returns no data (the OpenMetrics output then carries no exemplars).


class SnapshotPrometheusReader(PrometheusMetricReader):
    """The Prometheus reader, which can also hand a snapshot of the data to our own endpoints.

    One reader serves both ``/metrics`` and the JSON snapshot API: every extra reader would add its
    own aggregation work to every measurement.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._capture = threading.local()
        self._snapshot_lock = threading.Lock()

    def _receive_metrics(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> None:
        if getattr(self._capture, "active", False):
            self._capture.data = metrics_data
            return
        if getattr(self._capture, "keep", False):
            self._capture.translated = metrics_data
        super()._receive_metrics(metrics_data, timeout_millis, **kwargs)

    def collect_families(self, registry: Any) -> tuple[list[Any], MetricsData | None]:
        """Collect ``registry`` (the one this reader feeds) now: its metric families, and the data
        this reader handed to its collector for them (exemplars included) — or None."""
        self._capture.keep = True
        self._capture.translated = None
        try:
            families = list(registry.collect())
            data: MetricsData | None = self._capture.translated
            return families, data
        finally:
            self._capture.keep = False
            self._capture.translated = None

    def snapshot(self) -> MetricsData | None:
        """Collect now and return the data (cumulative) without feeding the Prometheus collector."""
        with self._snapshot_lock:
            self._capture.active = True
            self._capture.data = None
            try:
                self.collect()
                data: MetricsData | None = self._capture.data
                return data
            finally:
                self._capture.active = False
                self._capture.data = None


# -- OpenTelemetry SDK 1.45: a view matching every instrument but a few ---------------------------
# Fallback: without View._match the view matches what its public criteria say (the excluded names
# included), so an excluded instrument matched by another view too is exported twice. Exclusions
# exist only when MetricsOptions chooses the buckets of a pre-configured histogram (its own view).


class ExcludingView(View):
    """A ``View`` that matches what its criteria say except the instruments named in ``exclude``
    (each instrument must match exactly one view, or it is exported once per match)."""

    def __init__(self, *, exclude: frozenset[str] = frozenset(), **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._excluded = frozenset(name.lower() for name in exclude)

    def _match(self, instrument: Any) -> bool:
        if instrument.name in self._excluded:
            return False
        matches: bool = super()._match(instrument)
        return matches


# -- mcp 2.3: the connection behind a server middleware's request context ------------------------
# ``ServerRequestContext.session`` (a ``ServerSession``) keeps its ``Connection`` — a public class
# with ``session_id``, ``protocol_version`` and the per-connection ``exit_stack`` — only as
# ``_connection``. Fallback: None, and then no ``mcp.server.session.duration``; ``mcp.session.id``
# still comes from the HTTP header.


def mcp_connection(ctx: Any) -> Any:
    """The MCP ``Connection`` a request arrived on, or None."""
    connection = getattr(getattr(ctx, "session", None), "_connection", None)
    return connection if hasattr(connection, "exit_stack") and hasattr(connection, "state") else None
