"""``db.client.operation.duration``: recorded by track_database_operation while OTLP metrics are on."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader
from opentelemetry.semconv.attributes.db_attributes import (
    DB_COLLECTION_NAME,
    DB_OPERATION_NAME,
    DB_SYSTEM_NAME,
)
from opentelemetry.semconv.attributes.error_attributes import ERROR_TYPE
from opentelemetry.semconv.metrics.db_metrics import DB_CLIENT_OPERATION_DURATION

import atoms_otel
from atoms_otel import AdvancedOptions, track_database_operation
from atoms_otel.otel import metrics
from atoms_otel.otel.metrics.registry import DB_DURATION_BUCKETS
from atoms_otel.testing import CapturedTelemetry
from tests.support.collector import Collector


class RowMissing(Exception):
    pass


@pytest.fixture
def reset_metrics() -> Iterator[None]:
    """Shut down after the test; the registry outlives the pipeline, so its counts are reset."""
    yield
    atoms_otel.shutdown()
    metrics.reset_all()


def _calls() -> None:
    """One successful select on users, one failed insert without a table."""

    @track_database_operation("select", "users", system="postgresql")
    def get_user() -> str:
        return "ada"

    @track_database_operation("insert", system="postgresql")
    def insert() -> None:
        raise RowMissing("gone")

    assert get_user() == "ada"
    with pytest.raises(RowMissing):
        insert()


def test_the_semconv_histogram_reaches_a_real_collector(collector: Collector, reset_metrics: None) -> None:
    """With OTLP metrics on, each call is one point with the semconv attributes; failures add error.type."""
    reader = InMemoryMetricReader()
    atoms_otel.configure(
        service_name="db",
        otlp_endpoint=collector.http_endpoint,
        advanced=AdvancedOptions(log_stream=io.StringIO(), metric_readers=(reader,)),
    )
    _calls()
    local = _histogram_points(reader)
    atoms_otel.shutdown()

    rows = collector.wait_for(lambda c: [m for m in c.metrics() if m["name"] == DB_CLIENT_OPERATION_DURATION])
    metric = rows[-1]
    assert metric["unit"] == "s" and metric["type"] == "Histogram"
    points = {tuple(sorted(p["attributes"].items())): p["count"] for p in metric["points"]}
    ok = {DB_SYSTEM_NAME: "postgresql", DB_OPERATION_NAME: "select", DB_COLLECTION_NAME: "users"}
    failed = {
        DB_SYSTEM_NAME: "postgresql",
        DB_OPERATION_NAME: "insert",
        ERROR_TYPE: f"{__name__}.RowMissing",
    }
    assert points == {tuple(sorted(ok.items())): 1, tuple(sorted(failed.items())): 1}
    assert {tuple(point.explicit_bounds) for point in local} == {DB_DURATION_BUCKETS}


def test_not_recorded_without_otlp_metrics(capture_telemetry: CapturedTelemetry) -> None:
    """In-process only: the spec's database metrics, no semconv histogram, nothing new on /metrics."""
    _calls()
    assert capture_telemetry.metric_value("database_queries_total", operation="select") == 1
    assert DB_CLIENT_OPERATION_DURATION not in capture_telemetry.metrics()
    assert "db_client_operation_duration" not in capture_telemetry.prometheus_text()


def test_opt_out_keeps_the_spec_metrics_only(
    collector: Collector, reset_metrics: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ATOMS_OTEL_DB_CLIENT_METRICS=false: OTLP gets database.queries but no db.client.operation.duration."""
    monkeypatch.setenv("ATOMS_OTEL_DB_CLIENT_METRICS", "false")
    atoms_otel.configure(
        service_name="db",
        otlp_endpoint=collector.http_endpoint,
        advanced=AdvancedOptions(log_stream=io.StringIO()),
    )
    assert atoms_otel.get_telemetry().settings.db_client_metrics is False  # type: ignore[union-attr]
    _calls()
    atoms_otel.shutdown()
    names = collector.wait_for(
        lambda c: {m["name"] for m in c.metrics()} >= {"database.queries"} and c.metrics()
    )
    assert DB_CLIENT_OPERATION_DURATION not in {m["name"] for m in names}


def _histogram_points(reader: InMemoryMetricReader) -> list[HistogramDataPoint]:
    data = reader.get_metrics_data()
    assert data is not None
    return [
        point
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == DB_CLIENT_OPERATION_DURATION
        for point in metric.data.data_points
        if isinstance(point, HistogramDataPoint)
    ]
