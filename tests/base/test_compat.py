"""The third-party shim: each private access works on the tested versions and degrades gracefully."""

from __future__ import annotations

from fastapi import FastAPI
from opentelemetry.sdk.metrics import Counter, MeterProvider
from opentelemetry.sdk.metrics.export import AggregationTemporality, ConsoleMetricExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry

from atoms_otel.base import compat


def test_fastapi_native_telemetry_is_turned_off_when_present() -> None:
    """On FastAPI 0.165 the app's telemetry switches go off; on anything else nothing happens."""
    app = FastAPI()
    assert compat.disable_fastapi_native_telemetry(app) is True
    assert app._telemetry["tracing"] is False  # type: ignore[attr-defined]
    assert compat.disable_fastapi_native_telemetry(object()) is False


def test_route_tracker_reports_the_route_fastapi_selects() -> None:
    """The tracker object accepts the router's report; its route starts unset."""
    tracker = compat.new_route_tracker({"root_path": ""})
    assert tracker is not None and getattr(tracker, "route", None) is None


def test_resource_update_reaches_sdk_providers_and_skips_others() -> None:
    """A forked worker's new service.instance.id lands on real providers; odd objects are skipped."""
    provider = TracerProvider(resource=Resource({"service.instance.id": "parent"}))
    compat.update_resource((provider, object()), Resource({"service.instance.id": "child"}))
    assert provider.resource.attributes["service.instance.id"] == "child"


def test_exporter_preferences_are_read_or_left_to_the_default() -> None:
    """A real exporter's temporality is carried over; without the private fields, defaults."""
    delta = {Counter: AggregationTemporality.DELTA}
    preferences = compat.exporter_preferences(ConsoleMetricExporter(preferred_temporality=delta))
    assert preferences["preferred_temporality"][Counter] is AggregationTemporality.DELTA
    assert compat.exporter_preferences(object()) == {  # type: ignore[arg-type]
        "preferred_temporality": None,
        "preferred_aggregation": None,
    }


def test_snapshot_reader_returns_data_without_feeding_the_prometheus_collector() -> None:
    """snapshot() returns the collected data; /metrics still renders from its own collection."""
    registry = CollectorRegistry(auto_describe=True)
    reader = compat.SnapshotPrometheusReader(registry=registry, scope_info_enabled=False)
    provider = MeterProvider(metric_readers=[reader])
    provider.get_meter("m").create_counter("things").add(3)
    data = reader.snapshot()
    assert data is not None
    names = [m.name for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics]
    assert names == ["things"]
    compat.reset_target_info(reader)
    compat.reset_target_info(object())  # type: ignore[arg-type]
    provider.shutdown()


def test_suppression_keys_are_the_sdks() -> None:
    """Our own probes and deliveries are suppressed with the keys instrumentations read."""
    from opentelemetry import context

    assert compat.SUPPRESS_INSTRUMENTATION_KEYS[0] == context._SUPPRESS_INSTRUMENTATION_KEY
