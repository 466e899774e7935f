"""What a finished request records, bound once per series instead of built per request.

A request ends in one series: ``(method, route template, status code, error.type)``. The first
request of a series binds the metric children (``http_requests_total{method,path,status}``,
``http_request_duration_seconds{method,path}``) and, when the semantic-convention metrics are on,
the attribute set of ``http.server.request.duration``; every later request of the series does one
dictionary lookup and records. Route templates, known methods and status codes keep the number of
series small; at most ``_MAX_SERIES`` are kept per configuration, and requests of further series
are recorded through objects built for the call (correct, just not cached).

``http.server.request.duration`` and ``http.server.active_requests`` (OpenTelemetry HTTP
semantic conventions) are recorded when metrics leave the process (an OTLP metrics endpoint, or a
metric reader passed in ``AdvancedOptions``), unless ``ATOMS_OTEL_HTTP_SEMCONV_METRICS=false``.
Scrape-only services do not pay for them: ``/metrics`` keeps the spec's Prometheus names.
``server.address``/``server.port`` are opt-in for these metrics in the conventions and are not
recorded (their cardinality is the client's choice).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterable
from typing import Any, Final

from opentelemetry import metrics as metrics_api
from opentelemetry.semconv._incubating.metrics.http_metrics import HTTP_SERVER_ACTIVE_REQUESTS
from opentelemetry.semconv.attributes.error_attributes import ERROR_TYPE
from opentelemetry.semconv.attributes.http_attributes import (
    HTTP_REQUEST_METHOD,
    HTTP_RESPONSE_STATUS_CODE,
    HTTP_ROUTE,
)
from opentelemetry.semconv.attributes.network_attributes import NETWORK_PROTOCOL_VERSION
from opentelemetry.semconv.attributes.url_attributes import URL_SCHEME
from opentelemetry.semconv.metrics.http_metrics import HTTP_SERVER_REQUEST_DURATION

from atoms_otel.core.telemetry import Telemetry
from atoms_otel.otel.metrics import DURATION_BUCKETS, BoundInstrument
from atoms_otel.producers.http.routes import UNMATCHED

__all__ = ["SemconvMetrics", "Series", "SeriesTable", "semconv_metrics"]

_MAX_SERIES: Final = 2000
_MAX_ACTIVE_KEYS: Final = 64
_ActiveKey = tuple[str, str]
SeriesKey = tuple[str, str, int, str | None, str, str]
"""(method, route template, status code, error.type, url.scheme, network.protocol.version)"""


class SemconvMetrics:
    """The two semantic-convention HTTP server instruments of one Telemetry handle."""

    __slots__ = ("_active", "_lock", "duration", "enabled")

    def __init__(self, meter: metrics_api.Meter) -> None:
        self.duration = meter.create_histogram(
            HTTP_SERVER_REQUEST_DURATION,
            unit="s",
            description="Duration of HTTP server requests.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        # Changed twice per request: counted in the process and read at collection time.
        self._active: dict[_ActiveKey, list[Any]] = {}
        self._lock = threading.Lock()
        self.enabled = True
        """False while the current configuration does not record them: nothing is reported."""
        meter.create_observable_up_down_counter(
            HTTP_SERVER_ACTIVE_REQUESTS,
            [self._observe],
            unit="{request}",
            description="Number of active HTTP server requests.",
        )

    def active(self, method: str, scheme: str, delta: int) -> None:
        """Move ``http.server.active_requests{http.request.method,url.scheme}`` by ``delta``.
        At most 64 attribute sets are kept (methods are normalised, schemes come from the server);
        further ones are not counted."""
        key = (method, scheme)
        with self._lock:
            entry = self._active.get(key)
            if entry is None:
                if len(self._active) >= _MAX_ACTIVE_KEYS:
                    return
                entry = self._active[key] = [0, {HTTP_REQUEST_METHOD: method, URL_SCHEME: scheme}]
            entry[0] += delta

    def _observe(self, _options: metrics_api.CallbackOptions) -> Iterable[metrics_api.Observation]:
        if not self.enabled:
            return []
        with self._lock:
            entries = [(count, attributes) for count, attributes in self._active.values()]
        return [metrics_api.Observation(count, attributes) for count, attributes in entries]


_instruments: weakref.WeakKeyDictionary[Telemetry, SemconvMetrics] = weakref.WeakKeyDictionary()
_instruments_lock = threading.Lock()


def semconv_metrics(telemetry: Telemetry) -> SemconvMetrics | None:
    """The handle's semantic-convention instruments when its metrics leave the process, else None.

    Created once per handle (the instruments follow re-configuration through the proxy meter)."""
    pipeline = telemetry.pipeline
    wanted = (
        pipeline is not None
        and telemetry.settings.http_semconv_metrics
        and ("metrics" in pipeline.destinations or bool(telemetry.advanced.metric_readers))
    )
    with _instruments_lock:
        instruments = _instruments.get(telemetry)
        if instruments is None and wanted:
            instruments = _instruments[telemetry] = SemconvMetrics(telemetry.meter)
        if instruments is not None:
            instruments.enabled = wanted
    return instruments if wanted else None


class Series:
    """One series' bound children, and its ``http.server.request.duration`` bound to its attributes."""

    __slots__ = ("duration", "requests", "semconv")

    def __init__(
        self,
        telemetry: Telemetry,
        key: tuple[str, str, int, str | None, str, str],
        semconv: SemconvMetrics | None,
    ) -> None:
        method, route, status, error_type, scheme, version = key
        metrics = telemetry.metrics
        self.requests = metrics.http_requests_total.labels(method, route, str(status))
        self.duration = metrics.http_request_duration_seconds.labels(method, route)
        self.semconv: BoundInstrument | None = None
        if semconv is not None:
            attributes: dict[str, Any] = {HTTP_REQUEST_METHOD: method, URL_SCHEME: scheme}
            if status:
                attributes[HTTP_RESPONSE_STATUS_CODE] = status
            if route != UNMATCHED:
                attributes[HTTP_ROUTE] = route
            if error_type is not None:
                attributes[ERROR_TYPE] = error_type
            if version:
                attributes[NETWORK_PROTOCOL_VERSION] = version
            self.semconv = BoundInstrument(semconv.duration, attributes)


class SeriesTable:
    """The series of one configuration, bounded (see the module docstring)."""

    __slots__ = ("_series", "semconv", "telemetry")

    def __init__(self, telemetry: Telemetry) -> None:
        self.telemetry = telemetry
        self.semconv = semconv_metrics(telemetry)
        self._series: dict[tuple[Any, ...], Series] = {}

    def get(self, key: SeriesKey) -> Series:
        series = self._series.get(key)
        if series is None:
            series = Series(self.telemetry, key, self.semconv)
            if len(self._series) < _MAX_SERIES:
                self._series[key] = series
        return series
