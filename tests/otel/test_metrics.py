"""Metric facades and the pre-configured metrics, as OpenTelemetry data and as Prometheus text."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from opentelemetry import metrics as metrics_api

import atoms_otel
from atoms_otel import Counter, Gauge, Histogram, MetricsOptions, MetricsRegistry, get_metrics_registry
from atoms_otel.base import guard as _guard
from atoms_otel.testing import CapturedTelemetry
from tests.support.prometheus import check_metrics


def test_counter_increments_by_labels(capture_telemetry: CapturedTelemetry) -> None:
    """inc() adds per label set; the default amount is 1."""
    orders = Counter("orders_total", "Orders placed", labels=("region",))
    orders.inc(labels={"region": "eu"})
    orders.inc(2, labels={"region": "eu"})
    orders.inc(labels={"region": "us"})
    assert capture_telemetry.metric_value("orders_total", region="eu") == 3
    assert capture_telemetry.metric_value("orders_total", region="us") == 1


def test_counter_ignores_negative_increments(capture_telemetry: CapturedTelemetry) -> None:
    """A counter cannot go down: the call is ignored and warned about, never raised."""
    counter = Counter("refunds_total", "Refunds")
    counter.inc(5)
    counter.inc(-3)
    assert capture_telemetry.metric_value("refunds_total") == 5


def test_gauge_set_inc_and_dec(capture_telemetry: CapturedTelemetry) -> None:
    """set() replaces, inc()/dec() move the value; each label set is separate."""
    queue = Gauge("queue_depth", "Jobs waiting", labels=("queue",))
    queue.set(10, {"queue": "a"})
    queue.inc(2, {"queue": "a"})
    queue.dec(5, {"queue": "a"})
    queue.inc(labels={"queue": "b"})
    assert capture_telemetry.metric_value("queue_depth", queue="a") == 7
    assert queue.value({"queue": "a"}) == 7 and queue.value({"queue": "b"}) == 1


def test_histogram_uses_second_buckets_for_durations(capture_telemetry: CapturedTelemetry) -> None:
    """unit="s" gets the OTel HTTP buckets in seconds (not the SDK's millisecond defaults)."""
    latency = Histogram("job_duration", "Job time", unit="s")
    latency.observe(0.2)
    latency.observe(3.0)
    point = capture_telemetry.metrics()["job_duration"].data.data_points[0]
    assert point.explicit_bounds[:3] == (0.005, 0.01, 0.025) and point.explicit_bounds[-1] == 10.0
    assert point.count == 2 and point.sum == pytest.approx(3.2)


def test_histogram_custom_buckets_and_timer(capture_telemetry: CapturedTelemetry) -> None:
    """buckets= are honoured and time() observes a block's duration."""
    size = Histogram("payload_bytes", "Payload size", unit="By", buckets=(100, 1000))
    size.observe(50)
    with Histogram("step_seconds", "Step", unit="s").time():
        pass
    assert capture_telemetry.metrics()["payload_bytes"].data.data_points[0].explicit_bounds == (100.0, 1000.0)
    assert capture_telemetry.metric_value("step_seconds") == 1


def test_histogram_rejects_unsorted_buckets() -> None:
    """Buckets must increase strictly: a configuration mistake fails at creation."""
    with pytest.raises(ValueError, match="strictly increasing"):
        Histogram("bad_buckets", buckets=(1, 0.5))


def test_invalid_metric_names_fail_at_creation() -> None:
    """A name the OTel API would reject fails where it is written, with the rule."""
    with pytest.raises(ValueError, match="invalid metric name"):
        Counter("9 lives")


def test_undeclared_labels_are_dropped(capture_telemetry: CapturedTelemetry) -> None:
    """Labels outside the declared names never create series (bounded cardinality)."""
    hits = Counter("hits_total", "Hits", labels=("route",))
    hits.inc(labels={"route": "/a", "user_id": "u-123"})
    series = capture_telemetry.metrics()["hits_total"].data.data_points
    assert [dict(p.attributes or {}) for p in series] == [{"route": "/a"}]


def test_cardinality_is_bounded_with_an_overflow_series(capture_telemetry: CapturedTelemetry) -> None:
    """Past the limit, new label sets fold into one otel_metric_overflow series."""
    capture_telemetry.reconfigure(metrics=MetricsOptions(cardinality_limit=10))
    hostile = Counter("by_user_total", "Per-user hits (a cardinality mistake)", labels=("user",))
    for i in range(100):
        hostile.inc(labels={"user": f"u{i}"})
    text = capture_telemetry.prometheus_text()
    series = [line for line in text.splitlines() if line.startswith("by_user_total{")]
    assert len(series) == 11  # the limit, plus the one overflow series
    assert any('otel_metric_overflow="true"' in line for line in series)
    assert sum(float(line.rsplit(" ", 1)[1]) for line in series) == 100


def test_preconfigured_metrics_have_the_contract_names(capture_telemetry: CapturedTelemetry) -> None:
    """The recorders fill metrics whose Prometheus names and labels are the documented ones."""
    atoms_otel.record_http_request("POST", "/api/users", 201, 0.345)
    atoms_otel.record_tool_execution("create_user", 0.12)
    atoms_otel.record_tool_execution("create_user", 0.5, success=False)
    atoms_otel.record_error("DatabaseError", "database")
    atoms_otel.record_database_query("select", 0.01, table="users")
    atoms_otel.record_cache_operation("get", True)
    atoms_otel.record_cache_operation("get", "miss")
    get_metrics_registry().active_connections.inc()
    text = capture_telemetry.prometheus_text()
    for expected in (
        'http_requests_total{method="POST",path="/api/users",status="201"} 1.0',
        'http_request_duration_seconds_bucket{le="0.5",method="POST",path="/api/users"} 1.0',
        'tool_executions_total{status="success",tool="create_user"} 1.0',
        'tool_executions_total{status="error",tool="create_user"} 1.0',
        'tool_execution_duration_seconds_count{status="success",tool="create_user"} 1.0',
        'errors_total{error_type="DatabaseError",source="database"} 1.0',
        'database_queries_total{operation="select",status="success",table="users"} 1.0',
        'database_query_duration_seconds_count{operation="select",table="users"} 1.0',
        'cache_operations_total{cache="default",operation="get",result="hit"} 1.0',
        'cache_operations_total{cache="default",operation="get",result="miss"} 1.0',
        "active_connections 1.0",
    ):
        assert expected in text, expected


def test_every_exposed_metric_has_help_and_passes_promtool(capture_telemetry: CapturedTelemetry) -> None:
    """promtool check metrics finds no problem in our exposition (HELP everywhere, valid names)."""
    atoms_otel.record_http_request("GET", "/items/{item_id}", 200, 0.01)
    atoms_otel.record_tool_execution("t", 0.1)
    Counter("no_description_total").inc()
    get_metrics_registry().active_connections.set(2)
    exposition = capture_telemetry.telemetry.metrics_text()  # type: ignore[union-attr]
    for line in exposition.decode().splitlines():
        if line.startswith("# HELP"):
            assert len(line.split(" ", 3)) == 4 and line.split(" ", 3)[3].strip(), line
    result = check_metrics(exposition)
    assert result.returncode == 0, result.stdout + result.stderr


def test_registry_finds_metrics_by_otel_or_prometheus_name() -> None:
    """get() accepts http.requests and http_requests_total alike."""
    registry = get_metrics_registry()
    assert registry.get("http.requests") is registry.http_requests_total
    assert registry.get("http_requests_total") is registry.http_requests_total
    assert registry.get("http_request_duration_seconds") is registry.http_request_duration_seconds
    assert registry.get("nope") is None


def test_registry_get_or_create_returns_the_same_metric() -> None:
    """counter() twice gives one metric; a different kind under the same name is refused."""
    registry = MetricsRegistry("tests.registry", preconfigured=False)
    first = registry.counter("jobs_total", "Jobs")
    assert registry.counter("jobs_total") is first
    with pytest.raises(ValueError, match="already exists"):
        registry.gauge("jobs_total")


def test_observable_gauge_failures_are_contained(capture_telemetry: CapturedTelemetry) -> None:
    """A callback that raises yields no point instead of breaking collection."""
    _guard.raise_internal_errors = False
    registry = MetricsRegistry("tests.observable", preconfigured=False)
    registry.observable_gauge("pool_size", lambda: {(("pool", "db"),): 4.0}, "Pool size")

    sensor = {"down": True}

    def broken() -> float:
        if sensor["down"]:
            raise RuntimeError("sensor down")
        return 1.0

    # Observable instruments live as long as the process (as in the SDK): repair it afterwards.
    registry.observable_gauge("broken_sensor", broken, "Broken")
    try:
        assert capture_telemetry.metric_value("pool_size", pool="db") == 4.0
        assert "broken_sensor" not in capture_telemetry.metrics()
        assert _guard.internal_error_counts()["observable gauge broken_sensor"] >= 1
    finally:
        sensor["down"] = False


def test_counting_is_exact_under_thread_concurrency(capture_telemetry: CapturedTelemetry) -> None:
    """Eight threads x 2000 increments and gauge moves lose nothing."""
    counter = Counter("concurrent_total", "Concurrent increments", labels=("worker",))
    gauge = Gauge("concurrent_level", "Concurrent up/down")
    barrier = threading.Barrier(8)

    def work(worker: int) -> None:
        barrier.wait()
        for _ in range(2000):
            counter.inc(labels={"worker": str(worker % 2)})
            gauge.inc()
            gauge.dec()
            gauge.inc()

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(work, range(8)))
    assert capture_telemetry.metric_value("concurrent_total") == 16000
    assert capture_telemetry.metric_value("concurrent_level") == 16000 and gauge.value() == 16000


def test_instruments_created_before_configure_record_after(capture_telemetry: CapturedTelemetry) -> None:
    """Facades and raw OTel API instruments made at import time start recording once configured."""
    atoms_otel.shutdown()
    early_facade = Counter("early_facade_total", "Made before configure")
    early_api = metrics_api.get_meter("early.module").create_counter("early_api", description="Made early")
    early_facade.inc()  # before configure: goes nowhere, harmlessly
    capture_telemetry.reconfigure()
    early_facade.inc()
    early_api.add(3)
    assert capture_telemetry.metric_value("early_facade_total") == 1
    assert capture_telemetry.metric_value("early_api") == 3


def test_reconfigure_rebinds_instruments_to_the_new_pipeline(capture_telemetry: CapturedTelemetry) -> None:
    """After configure() runs again, the same instrument records into the new pipeline only."""
    jobs = Counter("rebind_total", "Rebound")
    jobs.inc()
    capture_telemetry.reconfigure(service_name="second")
    jobs.inc(5)
    assert capture_telemetry.metric_value("rebind_total") == 5
    assert 'service_name="second"' in capture_telemetry.prometheus_text()


def test_gauge_value_survives_reconfiguration(capture_telemetry: CapturedTelemetry) -> None:
    """A gauge (e.g. active connections) keeps its level across configure() calls."""
    gauge = Gauge("in_flight", "In flight")
    gauge.set(3)
    capture_telemetry.reconfigure()
    gauge.dec()
    assert capture_telemetry.metric_value("in_flight") == 2


def test_contained_internal_errors_are_exposed_as_a_metric(capture_telemetry: CapturedTelemetry) -> None:
    """Every contained failure is counted in atoms_otel_internal_errors_total{component}."""
    _guard.raise_internal_errors = False
    _guard.report_internal_error("demo component", RuntimeError("x"))
    _guard.report_internal_error("demo component", RuntimeError("y"))
    text = capture_telemetry.prometheus_text()
    assert 'atoms_otel_internal_errors_total{component="demo component"} 2.0' in text


def test_observable_instruments_created_before_configure_survive_garbage_collection(
    capture_telemetry: CapturedTelemetry,
) -> None:
    """An observable gauge whose handle nobody keeps is still collected after re-configuration."""
    import gc

    atoms_otel.shutdown()
    registry = MetricsRegistry("tests.unreferenced", preconfigured=False)
    registry.observable_gauge("unreferenced_reading", lambda: 7.0, "Nobody holds this instrument")
    gc.collect()
    capture_telemetry.reconfigure()
    assert capture_telemetry.metric_value("unreferenced_reading") == 7.0
