"""Exemplars on ``/metrics``: the trace of a recent request on each histogram bucket.

The OpenTelemetry SDK samples exemplars (a measurement with the trace and span it was recorded in)
on histogram points; the OpenTelemetry Prometheus exporter drops them. Two parts carry them to the
OpenMetrics output (``Accept: application/openmetrics-text``; the 0.0.4 text cannot hold them):

- ``LatestExemplarReservoir`` keeps, per histogram bucket, the latest measurement recorded in a
  sampled span, until a newer one replaces it — as ``prometheus_client`` keeps its exemplars. The
  SDK's reservoir forgets its exemplars at every collection, and ``/metrics`` shares its reader with
  the JSON snapshots the live view takes every 5 s, which would take most of them first. It is also
  cheaper than the SDK's: one ``bisect`` and one list store, no lock (~1 µs per observation in a
  sampled span, with the trace-based filter; bench/bench_exemplars.py).
- ``openmetrics_text`` encodes the Prometheus registry's families in OpenMetrics 1.0 with each
  bucket's exemplar attached: ``...bucket{le="0.1",...} 7 # {trace_id="...",span_id="..."} 0.042 ts``.

Bounded: one exemplar per bucket per series (the series are bounded by the cardinality limit); an
exemplar holds the value, time, span context and the measurement's attribute dict (shared with the
recording child, not copied). Exemplar labels are ``trace_id`` and ``span_id``, then the measurement's
filtered attributes while the label set stays within OpenMetrics' 128 characters.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from itertools import accumulate
from json import dumps
from typing import Any, Final

from opentelemetry.context import Context
from opentelemetry.sdk.metrics import Exemplar, ExemplarReservoir, SimpleFixedSizeExemplarReservoir
from opentelemetry.sdk.metrics.export import Histogram, MetricsData
from opentelemetry.trace import SpanContext, get_current_span
from opentelemetry.util.types import Attributes
from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.samples import Exemplar as PromExemplar
from prometheus_client.samples import Sample, Timestamp

from atoms_otel.base import guard as _guard
from atoms_otel.base.compat import SnapshotPrometheusReader

__all__ = [
    "EXEMPLAR_LABELS_MAX_CHARS",
    "LatestExemplarReservoir",
    "exemplar_labels",
    "exemplar_reservoir_factory",
    "openmetrics_text",
    "with_exemplars",
]

EXEMPLAR_LABELS_MAX_CHARS: Final = 128
"""OpenMetrics 1.0: the label names and values of an exemplar, together, in characters."""

_LABEL_NAME_INVALID: Final = re.compile(r"[^a-zA-Z0-9_]")

# One histogram series as both sides see it: its label values (sorted, empty ones left out), its
# cumulative bucket counts and its sum. The exporter built the families from the same data point,
# so the key is equal exactly; a key two points share is ambiguous and gets no exemplars.
_SeriesKey = tuple[tuple[str, ...], tuple[float, ...], float]


class LatestExemplarReservoir(ExemplarReservoir):
    """Per bucket, the latest measurement offered (the exemplar filter chose it), kept across
    collections until a newer one lands in the same bucket."""

    __slots__ = ("_boundaries", "_slots")

    def __init__(self, boundaries: Sequence[float]) -> None:
        self._boundaries = tuple(boundaries)
        self._slots: list[tuple[float, int, Attributes, SpanContext] | None] = [None] * (
            len(self._boundaries) + 1
        )

    def offer(self, value: float, time_unix_nano: int, attributes: Attributes, context: Context) -> None:
        # The bucket the histogram counts the value in (``bisect_left``: a value equal to a bound
        # belongs to that bound's bucket). One store of a tuple: atomic, so no lock.
        span_context = get_current_span(context).get_span_context()
        self._slots[bisect_left(self._boundaries, value)] = (value, time_unix_nano, attributes, span_context)

    def collect(self, point_attributes: Attributes) -> list[Exemplar]:
        exemplars = []
        for slot in self._slots:
            if slot is None:
                continue
            value, time_unix_nano, attributes, span_context = slot
            filtered = (
                {k: v for k, v in attributes.items() if k not in (point_attributes or {})}
                if attributes
                else None
            )
            valid = span_context.is_valid
            exemplars.append(
                Exemplar(
                    filtered or None,
                    value,
                    time_unix_nano,
                    span_context.span_id if valid else None,
                    span_context.trace_id if valid else None,
                )
            )
        return exemplars


def _build_reservoir(**kwargs: Any) -> ExemplarReservoir:
    boundaries = kwargs.get("boundaries")
    if boundaries is not None:  # an explicit-bucket histogram
        return LatestExemplarReservoir(boundaries)
    return SimpleFixedSizeExemplarReservoir(**kwargs)  # what the SDK gives the others


def exemplar_reservoir_factory(aggregation_type: type[Any]) -> Any:
    """A View's ``exemplar_reservoir_factory``: ``LatestExemplarReservoir`` for explicit-bucket
    histograms (the only aggregation whose builder receives ``boundaries``), the SDK's default
    reservoir for every other aggregation."""
    return _build_reservoir


def exemplar_labels(exemplar: Exemplar) -> dict[str, str]:
    """The OpenMetrics label set of an exemplar: ``trace_id`` (32 hex digits) and ``span_id`` (16),
    then its filtered attributes in name order while the whole set fits in 128 characters."""
    labels: dict[str, str] = {}
    if exemplar.trace_id and exemplar.span_id:
        labels["trace_id"] = format(exemplar.trace_id, "032x")
        labels["span_id"] = format(exemplar.span_id, "016x")
    used = sum(len(k) + len(v) for k, v in labels.items())
    for key, value in sorted((exemplar.filtered_attributes or {}).items()):
        name = _LABEL_NAME_INVALID.sub("_", key)
        if name[:1].isdigit():
            name = "_" + name
        text = _label_value(value)
        if name in labels or used + len(name) + len(text) > EXEMPLAR_LABELS_MAX_CHARS:
            continue
        labels[name] = text
        used += len(name) + len(text)
    return labels


def _label_value(value: Any) -> str:
    """A label value as the OpenTelemetry Prometheus exporter prints it (strings as they are,
    anything else as JSON)."""
    return value if isinstance(value, str) else dumps(value, default=str)


def _exemplars_by_series(data: MetricsData | None) -> dict[_SeriesKey, Sequence[Exemplar] | None]:
    found: dict[_SeriesKey, Sequence[Exemplar] | None] = {}
    for resource_metrics in data.resource_metrics if data is not None else ():
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                if not isinstance(metric.data, Histogram):
                    continue
                for point in metric.data.data_points:
                    values = (_label_value(v) for v in (point.attributes or {}).values())
                    key = (
                        tuple(sorted(v for v in values if v != "")),
                        tuple(float(c) for c in accumulate(point.bucket_counts)),
                        float(point.sum),
                    )
                    found[key] = None if key in found else (point.exemplars or ())
    return found


def _attach(family: Metric, exemplars: dict[_SeriesKey, Sequence[Exemplar] | None]) -> None:
    """Give the bucket samples of ``family`` (a histogram) the exemplars of their data point."""
    series: dict[tuple[tuple[str, str], ...], list[int]] = {}
    sums: dict[tuple[tuple[str, str], ...], float] = {}
    for index, sample in enumerate(family.samples):
        labels = tuple(sorted((k, v) for k, v in sample.labels.items() if k != "le"))
        if sample.name.endswith("_bucket"):
            series.setdefault(labels, []).append(index)
        elif sample.name.endswith("_sum"):
            sums[labels] = float(sample.value)
    for labels, indices in series.items():
        if labels not in sums:
            continue
        buckets = [family.samples[i] for i in indices]
        key = (
            tuple(sorted(v for _, v in labels if v != "")),
            tuple(float(s.value) for s in buckets),
            sums[labels],
        )
        found = exemplars.get(key)
        if not found:
            continue
        bounds = [float(s.labels["le"]) for s in buckets[:-1]]
        for exemplar in found:
            labelset = exemplar_labels(exemplar)
            if not labelset:
                continue  # nothing to link to
            position = indices[bisect_left(bounds, exemplar.value)]
            family.samples[position] = _with_exemplar(family.samples[position], exemplar, labelset)


def _with_exemplar(sample: Sample, exemplar: Exemplar, labels: dict[str, str]) -> Sample:
    seconds, nanos = divmod(exemplar.time_unix_nano, 1_000_000_000)
    return sample._replace(exemplar=PromExemplar(labels, exemplar.value, Timestamp(seconds, nanos)))


def with_exemplars(families: Iterable[Metric], data: MetricsData | None) -> list[Metric]:
    """``families`` (what the OpenTelemetry Prometheus collector made of ``data``) with the
    exemplars of ``data``'s histogram points on their bucket samples."""
    families = list(families)
    index = _exemplars_by_series(data)
    if any(index.values()):
        for family in families:
            if family.type == "histogram":
                _attach(family, index)
    return families


class _WithExemplars:
    """A one-shot collector: the registry's families, with exemplars, for one encoding."""

    def __init__(self, registry: CollectorRegistry, reader: SnapshotPrometheusReader) -> None:
        self._registry = registry
        self._reader = reader

    def collect(self) -> list[Metric]:
        families, data = self._reader.collect_families(self._registry)
        try:
            return with_exemplars(families, data)
        except Exception as exc:  # a scrape without exemplars beats a failed scrape
            _guard.report_internal_error("openmetrics exemplars", exc)
            return families


def openmetrics_text(registry: CollectorRegistry, reader: SnapshotPrometheusReader) -> bytes:
    """The registry in OpenMetrics 1.0, histogram buckets carrying their exemplars."""
    body: bytes = generate_openmetrics(_WithExemplars(registry, reader))  # type: ignore[no-untyped-call]
    return body
