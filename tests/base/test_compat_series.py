"""compat.BoundSeries: recording straight into the SDK's aggregations gives the SDK's own output."""

from __future__ import annotations

import math
from typing import Any

import pytest
from opentelemetry.context import get_current
from opentelemetry.sdk.metrics import Counter, Histogram, MeterProvider
from opentelemetry.sdk.metrics.export import AggregationTemporality, InMemoryMetricReader
from opentelemetry.sdk.metrics.view import View
from opentelemetry.sdk.trace import TracerProvider

from atoms_otel.base import compat

_VALUES = (0.003, 0.02, 0.02, 0.4, 1.5, 7.0, 0.0)


def _points(reader: InMemoryMetricReader) -> dict[str, list[Any]]:
    data = reader.get_metrics_data()
    assert data is not None
    return {
        metric.name: list(metric.data.data_points)
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
    }


def _same(left: Any, right: Any) -> dict[str, Any]:
    """The fields a data point is judged by, with timestamps only checked for order."""
    fields = {"attributes": dict(left.attributes)}
    for name in ("bucket_counts", "explicit_bounds", "sum", "count", "min", "max", "value"):
        if hasattr(left, name):
            assert getattr(left, name) == getattr(right, name), name
            fields[name] = getattr(left, name)
    assert left.start_time_unix_nano <= left.time_unix_nano
    return fields


def test_a_bound_histogram_and_counter_aggregate_exactly_as_the_public_api() -> None:
    """Same values through BoundSeries and through record()/add(): identical points, exemplars
    included (recorded inside a sampled span)."""
    reader = InMemoryMetricReader()
    meter = MeterProvider(metric_readers=[reader]).get_meter("t")
    bound_h, public_h = meter.create_histogram("bound_h"), meter.create_histogram("public_h")
    bound_c, public_c = meter.create_counter("bound_c"), meter.create_counter("public_c")
    attributes = {"method": "GET", "path": "/items/{id}"}
    series_h = compat.bind_series(bound_h, attributes)
    series_c = compat.bind_series(bound_c, attributes)
    assert isinstance(series_h, compat.BoundSeries) and isinstance(series_c, compat.BoundSeries)
    tracer = TracerProvider().get_tracer("t")
    with tracer.start_as_current_span("request") as span:
        for value in _VALUES:
            series_h.record(value, get_current())
            public_h.record(value, attributes)
            series_c.record(value, get_current())
            public_c.add(value, attributes)
    points = _points(reader)
    histogram = _same(points["bound_h"][0], points["public_h"][0])
    assert histogram["count"] == len(_VALUES) and histogram["attributes"] == attributes
    _same(points["bound_c"][0], points["public_c"][0])
    exemplars = points["bound_h"][0].exemplars
    assert exemplars and {e.trace_id for e in exemplars} == {span.get_span_context().trace_id}
    assert len(exemplars) == len(points["public_h"][0].exemplars)


def test_the_bound_series_follows_a_new_instrument_and_a_new_reader() -> None:
    """valid_for() fails for another instrument and after a reader is added, so a child rebinds."""
    provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    histogram = provider.get_meter("t").create_histogram("h")
    series = compat.bind_series(histogram, {"k": "v"})
    assert series is not None and series.valid_for(histogram)
    assert not series.valid_for(provider.get_meter("t").create_histogram("other"))
    late = InMemoryMetricReader()
    provider.add_metric_reader(late)
    assert not series.valid_for(histogram)
    rebound = compat.bind_series(histogram, {"k": "v"})
    assert rebound is not None
    rebound.record(0.5, get_current())
    assert _points(late)["h"][0].count == 1


@pytest.mark.parametrize(
    ("reader", "views"),
    [
        (InMemoryMetricReader(preferred_temporality={Histogram: AggregationTemporality.DELTA}), ()),
        (InMemoryMetricReader(), (View(instrument_name="h", attribute_keys={"k"}),)),
    ],
    ids=["delta-reader", "view-keeping-some-attributes"],
)
def test_no_binding_where_the_sdk_would_aggregate_differently(reader: Any, views: Any) -> None:
    """A delta reader drops its aggregations at each collection and a view filters attributes:
    the public API is used there (bind_series gives None)."""
    histogram = MeterProvider(metric_readers=[reader], views=list(views)).get_meter("t").create_histogram("h")
    assert compat.bind_series(histogram, {"k": "v", "other": "x"}) is None


def test_no_binding_for_a_no_op_instrument_or_odd_attribute_values() -> None:
    """Before configure() the proxies hold API no-op instruments; attribute values must be plain."""
    from opentelemetry.metrics import NoOpHistogram

    assert compat.bind_series(NoOpHistogram("h"), {"k": "v"}) is None
    histogram = MeterProvider(metric_readers=[InMemoryMetricReader()]).get_meter("t").create_histogram("h")
    assert compat.bind_series(histogram, {"k": ["a", "b"]}) is None


def test_the_cardinality_limit_sends_later_series_to_overflow_as_the_sdk_does() -> None:
    """With a reader's cardinality limit reached, bound series land where the public API's do."""
    reader = InMemoryMetricReader(cardinality_limits={Counter: 2})
    meter = MeterProvider(metric_readers=[reader]).get_meter("t")
    bound, public = meter.create_counter("bound"), meter.create_counter("public")
    for name in ("a", "b", "c", "d"):
        series = compat.bind_series(bound, {"k": name})
        assert series is not None
        series.record(1, get_current())
        public.add(1, {"k": name})
    points = _points(reader)

    def table(name: str) -> dict[tuple[Any, ...], Any]:
        return {tuple(sorted(p.attributes.items())): p.value for p in points[name]}

    assert table("bound") == table("public") and len(table("bound")) < 4  # some went to overflow


def test_accepts_only_what_the_sdk_records_without_a_warning() -> None:
    assert compat.accepts(0) and compat.accepts(2.5)
    assert not compat.accepts(-1) and not compat.accepts(math.inf) and not compat.accepts(math.nan)


def test_a_disabled_meter_is_never_bound_and_a_binding_stops_when_it_is_disabled() -> None:
    """A meter turned off by the SDK's meter configurator records nothing through a binding:
    bind_series refuses it, and a series bound before the switch is no longer valid."""
    from opentelemetry.sdk.metrics._internal import _disable_meter_configurator

    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    histogram = provider.get_meter("t").create_histogram("h")
    series = compat.bind_series(histogram, {"k": "v"})
    assert series is not None and series.valid_for(histogram)
    provider._set_meter_configurator(meter_configurator=_disable_meter_configurator)
    assert not series.valid_for(histogram)
    assert compat.bind_series(histogram, {"k": "v"}) is None
