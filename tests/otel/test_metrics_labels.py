"""Bound children: ``metric.labels(...)`` as in prometheus_client, over the OpenTelemetry pipeline."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry import trace

from atoms_otel import Counter, Gauge, Histogram, get_metrics_registry
from atoms_otel.otel.metrics import BoundInstrument, instruments
from atoms_otel.otel.metrics import metric as metric_module
from atoms_otel.testing import CapturedTelemetry


def _points(capture: CapturedTelemetry, name: str) -> list[Any]:
    return list(capture.metrics()[name].data.data_points)


def test_counter_child_records_the_series_of_inc_with_labels(capture_telemetry: CapturedTelemetry) -> None:
    """A child and inc(labels=...) with the same values add to one series."""
    orders = Counter("child_orders", "Orders", labels=("region", "channel"))
    orders.inc(labels={"region": "eu", "channel": "web"})
    orders.labels("eu", "web").inc()
    orders.labels("eu", "web").inc(2)
    assert capture_telemetry.metric_value("child_orders", region="eu", channel="web") == 4
    assert len(_points(capture_telemetry, "child_orders")) == 1


def test_positional_and_keyword_forms_give_the_same_child(capture_telemetry: CapturedTelemetry) -> None:
    """labels("a", "b") and labels(x="a", y="b") in any order are the same cached child."""
    calls = Counter("child_calls", "Calls", labels=("method", "path"))
    by_position = calls.labels("GET", "/users")
    assert calls.labels(path="/users", method="GET") is by_position
    assert calls.labels(method="GET", path="/users") is by_position
    by_position.inc()
    assert capture_telemetry.metric_value("child_calls", method="GET", path="/users") == 1


def test_label_values_are_converted_with_str(capture_telemetry: CapturedTelemetry) -> None:
    """Non-string values are recorded as str(value), sharing the series (and child) of that string."""
    statuses = Counter("child_statuses", "Statuses", labels=("status", "ok"))
    statuses.labels(200, True).inc()
    statuses.labels("200", "True").inc()
    assert statuses.labels(200, True) is statuses.labels("200", "True")
    statuses.labels(["a"], None).inc()
    assert capture_telemetry.metric_value("child_statuses", status="['a']", ok="None") == 1
    points = {tuple(p.attributes.items()): p.value for p in _points(capture_telemetry, "child_statuses")}
    assert points[(("status", "200"), ("ok", "True"))] == 2


def test_positional_values_must_match_the_declared_labels() -> None:
    """Too few or too many positional values raise ValueError naming the declared labels."""
    pairs = Counter("child_pairs", "Pairs", labels=("left", "right"))
    with pytest.raises(ValueError, match=r"takes 2 values, for \['left', 'right'\]; got 1"):
        pairs.labels("a")
    with pytest.raises(ValueError, match="got 3"):
        pairs.labels("a", "b", "c")
    with pytest.raises(ValueError, match="got 0"):
        pairs.labels()


def test_missing_and_undeclared_names_raise_naming_them() -> None:
    """Keyword labels must be exactly the declared names: missing and extra ones are named."""
    pairs = Counter("child_named", "Named", labels=("left", "right"))
    with pytest.raises(ValueError, match=r"missing label names \['right'\]; declared"):
        pairs.labels(left="a")
    with pytest.raises(ValueError, match=r"undeclared label names \['user_id'\]"):
        pairs.labels(left="a", right="b", user_id="42")
    with pytest.raises(ValueError, match=r"missing label names \['right'\], undeclared label names \['up'\]"):
        pairs.labels(left="a", up="b")


def test_positional_and_keyword_values_cannot_be_mixed() -> None:
    """labels("a", right="b") is refused rather than guessed."""
    pairs = Counter("child_mixed", "Mixed", labels=("left", "right"))
    with pytest.raises(ValueError, match="by position or by name, not both"):
        pairs.labels("a", right="b")


def test_metric_without_declared_labels_refuses_labels() -> None:
    """A metric declared without labels has no children: labels() raises a clear ValueError."""
    for plain in (Counter("child_plain_c"), Gauge("child_plain_g"), Histogram("child_plain_h")):
        with pytest.raises(ValueError, match="has no declared labels"):
            plain.labels("x")
        with pytest.raises(ValueError, match="has no declared labels"):
            plain.labels()


def test_children_made_before_reconfigure_record_into_the_new_pipeline(
    capture_telemetry: CapturedTelemetry,
) -> None:
    """Children hold the proxy, not the SDK instrument: after configure() they record into the new one."""
    counter = Counter("child_rebind_c", "C", labels=("k",)).labels("v")
    histogram = Histogram("child_rebind_h", "H", unit="s", labels=("k",)).labels("v")
    gauge = Gauge("child_rebind_g", "G", labels=("k",)).labels("v")
    counter.inc(5)
    histogram.observe(0.5)
    gauge.set(5)
    capture_telemetry.reconfigure(service_name="again")
    counter.inc()
    histogram.observe(0.25)
    gauge.inc()
    assert capture_telemetry.metric_value("child_rebind_c", k="v") == 1  # a new pipeline starts at zero
    assert capture_telemetry.metric_value("child_rebind_h", k="v") == 1
    assert capture_telemetry.histogram_sum("child_rebind_h", k="v") == pytest.approx(0.25)
    assert capture_telemetry.metric_value("child_rebind_g", k="v") == 6  # gauge values are carried over


def test_gauge_child_set_inc_dec_and_value(capture_telemetry: CapturedTelemetry) -> None:
    """A gauge child moves the same value as the labelled facade calls, and reads it back."""
    queue = Gauge("child_queue", "Queue", labels=("queue",))
    child = queue.labels("a")
    child.set(10)
    child.inc(2)
    child.dec(5)
    child.inc()
    child.dec()
    assert child.value() == 7 and queue.value({"queue": "a"}) == 7
    queue.inc(3, {"queue": "a"})
    assert child.value() == 10
    assert capture_telemetry.metric_value("child_queue", queue="a") == 10
    assert queue.labels("b").value() == 0


def test_observed_gauge_child_is_read_at_collection(capture_telemetry: CapturedTelemetry) -> None:
    """An observed gauge's child updates the in-process value that collection reads."""
    depth = Gauge("child_observed_depth", "Depth", labels=("pool",), observed=True)
    depth.labels("db").set(4)
    depth.labels("db").dec()
    assert capture_telemetry.metric_value("child_observed_depth", pool="db") == 3


def test_histogram_child_observe_and_time(capture_telemetry: CapturedTelemetry) -> None:
    """observe() records a value and time() a block's duration, in the declared buckets."""
    latency = Histogram("child_latency", "Latency", unit="s", labels=("step",), buckets=(0.1, 1.0))
    child = latency.labels("load")
    child.observe(0.5)
    with child.time():
        pass
    latency.observe(0.05, {"step": "load"})
    (point,) = _points(capture_telemetry, "child_latency")
    assert point.count == 3 and point.explicit_bounds == (0.1, 1.0)
    assert 0.55 <= point.sum < 1.0


def test_histogram_child_time_records_when_the_block_raises(capture_telemetry: CapturedTelemetry) -> None:
    """time() observes the duration even when the block raises, and lets the error through."""
    child = Histogram("child_failing", "Failing", unit="s", labels=("step",)).labels("x")
    with pytest.raises(RuntimeError), child.time():
        raise RuntimeError("boom")
    assert capture_telemetry.metric_value("child_failing", step="x") == 1


def test_observed_counter_child_counts_in_process(capture_telemetry: CapturedTelemetry) -> None:
    """An observed counter's child adds to the same in-process count as inc(labels=...)."""
    hits = Counter("child_hits", "Hits", labels=("page",), observed=True)
    hits.labels("home").inc()
    hits.labels(page="home").inc(2)
    hits.inc(labels={"page": "home"})
    hits.labels("home").inc(-1)  # a counter cannot go down: ignored
    assert capture_telemetry.metric_value("child_hits", page="home") == 4


def test_observed_counter_child_folds_series_past_the_bound(
    capture_telemetry: CapturedTelemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Children of an observed counter obey the same overflow rule as inc(labels=...)."""
    monkeypatch.setattr(instruments, "_MAX_OBSERVED_SERIES", 3)
    ids = Counter("child_by_id", "Per id", labels=("id",), observed=True)
    for n in range(10):
        ids.labels(n).inc()
    assert capture_telemetry.metric_value("child_by_id", otel_metric_overflow="true") == 7
    assert capture_telemetry.metric_value("child_by_id") == 10


def test_counter_child_ignores_negative_increments(capture_telemetry: CapturedTelemetry) -> None:
    """As for inc(), a negative amount on a child is ignored, not raised."""
    refunds = Counter("child_refunds", "Refunds", labels=("shop",)).labels("a")
    refunds.inc(5)
    refunds.inc(-3)
    assert capture_telemetry.metric_value("child_refunds", shop="a") == 5


def test_children_are_cached_per_label_values() -> None:
    """The same values return the same child; different values a different one."""
    jobs = Histogram("child_cached", "Jobs", labels=("queue",))
    assert jobs.labels("a") is jobs.labels("a") is jobs.labels(queue="a")
    assert jobs.labels("b") is not jobs.labels("a")
    assert jobs.labels("a").label_values == ("a",)


def test_child_cache_is_bounded_but_children_past_it_still_record(
    capture_telemetry: CapturedTelemetry,
) -> None:
    """At most 2000 children are cached per metric; later label sets get a working, uncached child."""
    wide = Counter("child_wide", "Wide", labels=("id",), observed=True)
    limit = metric_module._MAX_CHILDREN
    first = [wide.labels(str(n)) for n in range(limit)]
    assert wide.labels("0") is first[0] and len(wide._children) == limit
    extra = wide.labels("extra")
    assert wide.labels("extra") is not extra and len(wide._children) == limit
    extra.inc()
    wide.labels("extra").inc()
    assert capture_telemetry.metric_value("child_wide", id="extra") == 2


def test_counter_children_skip_exemplars_and_histogram_children_keep_them(
    capture_telemetry: CapturedTelemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In a sampled span, a counter child records no exemplar unless asked; a histogram child does."""
    monkeypatch.setenv("OTEL_METRICS_EXEMPLAR_FILTER", "trace_based")
    capture_telemetry.reconfigure()
    counts = Counter("child_ex_count", "Counts", labels=("k",))
    traced_counts = Counter("child_ex_traced", "Traced counts", labels=("k",))
    durations = Histogram("child_ex_duration", "Durations", unit="s", labels=("k",))
    quiet_durations = Histogram("child_ex_quiet", "Quiet durations", unit="s", labels=("k",))
    with trace.get_tracer("test").start_as_current_span("work") as span:
        counts.labels("v").inc()
        traced_counts.labels("v").inc(exemplar=True)
        durations.labels("v").observe(0.1)
        quiet_durations.labels("v").observe(0.1, exemplar=False)
    trace_id = span.get_span_context().trace_id
    collected = capture_telemetry.metrics()  # once: a collection hands counter exemplars over and resets them
    exemplars = {
        name: [e.trace_id for e in collected[name].data.data_points[0].exemplars]
        for name in ("child_ex_count", "child_ex_traced", "child_ex_duration", "child_ex_quiet")
    }
    assert exemplars == {
        "child_ex_count": [],
        "child_ex_traced": [trace_id],
        "child_ex_duration": [trace_id],
        "child_ex_quiet": [],
    }


def test_record_helpers_fill_the_preconfigured_series_through_children(
    capture_telemetry: CapturedTelemetry,
) -> None:
    """record_* helpers record the same series that the pre-configured metrics' children reach."""
    registry = get_metrics_registry()
    registry.record_tool_execution("search", 0.2, success=False)
    registry.tool_executions_total.labels("search", "error").inc()
    registry.record_database_query("select", 0.01, table="users")
    registry.record_cache_operation("get", True)
    registry.record_error("ValueError", "tool")
    registry.record_http_request("GET", "/items/{id}", 404, 0.03)
    assert capture_telemetry.metric_value("tool_executions_total", tool="search", status="error") == 2
    assert capture_telemetry.metric_value("tool_execution_duration_seconds", tool="search") == 1
    assert (
        capture_telemetry.metric_value(
            "database_queries_total", operation="select", table="users", status="success"
        )
        == 1
    )
    assert capture_telemetry.metric_value("database_query_duration_seconds", table="users") == 1
    assert (
        capture_telemetry.metric_value(
            "cache_operations_total", operation="get", result="hit", cache="default"
        )
        == 1
    )
    assert capture_telemetry.metric_value("errors_total", error_type="ValueError", source="tool") == 1
    assert capture_telemetry.metric_value("http_requests_total", path="/items/{id}", status="404") == 1
    assert registry.http_requests_total.labels("GET", "/items/{id}", "404") is (
        registry.http_requests_total.labels("GET", "/items/{id}", 404)
    )


def test_a_bound_instrument_records_like_the_instrument_and_follows_reconfigure(
    capture_telemetry: CapturedTelemetry,
) -> None:
    """BoundInstrument (semconv metrics: attributes that are not labels, any primitive value)
    records what the instrument's own record()/add() would, into the current pipeline; values the
    SDK refuses still reach the SDK's own checks (and are dropped there)."""
    assert capture_telemetry.telemetry is not None
    meter = capture_telemetry.telemetry.meter
    histogram, counter = (
        meter.create_histogram("bound.duration", unit="s"),
        meter.create_counter("bound.count"),
    )
    attributes = {"http.request.method": "GET", "http.response.status_code": 200}
    bound_h, bound_c = BoundInstrument(histogram, attributes), BoundInstrument(counter, attributes)
    for value in (0.5, 0.25, -1.0, float("nan")):
        bound_h.record(value)
        bound_c.add(value)
    (point,) = _points(capture_telemetry, "bound.duration")
    assert dict(point.attributes) == attributes and point.count == 2 and point.sum == pytest.approx(0.75)
    assert _points(capture_telemetry, "bound.count")[0].value == pytest.approx(0.75)
    capture_telemetry.reconfigure(service_name="again")
    bound_h.record(2.0)
    (point,) = _points(capture_telemetry, "bound.duration")
    assert point.count == 1 and point.sum == 2.0


def test_histogram_bind_records_as_observe_with_labels(capture_telemetry: CapturedTelemetry) -> None:
    """Histogram.bind(labels).record(v) gives the series observe(v, labels) gives, undeclared
    labels dropped the same way."""
    latency = Histogram("bind_latency", "Latency", unit="s", labels=("route",))
    bound = latency.bind({"route": "/a", "extra": "x"})
    bound.record(0.5)
    latency.observe(0.25, {"route": "/a", "extra": "x"})
    (point,) = _points(capture_telemetry, "bind_latency")
    assert dict(point.attributes) == {"route": "/a"} and point.count == 2 and point.sum == pytest.approx(0.75)
