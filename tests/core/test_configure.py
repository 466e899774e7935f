"""configure(), shutdown() and force_flush(): setup, replacement, failure without side effects."""

from __future__ import annotations

import io
import logging

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import atoms_otel
from atoms_otel import AdvancedOptions, ConfigurationError, Event, get_telemetry
from atoms_otel.base import guard as _guard
from atoms_otel.integrations.fastapi import route_paths
from atoms_otel.testing import CapturedTelemetry


@pytest.fixture(autouse=True)
def _shutdown_after() -> None:
    yield
    atoms_otel.shutdown()


def _quiet() -> AdvancedOptions:
    return AdvancedOptions(log_stream=io.StringIO())


def test_configure_returns_a_handle_with_the_resource() -> None:
    """The Telemetry handle exposes settings and a resource with service and instance identity."""
    telemetry = atoms_otel.configure(
        service_name="svc", service_version="1.2.3", environment="staging", advanced=_quiet()
    )
    assert telemetry.enabled and get_telemetry() is telemetry
    attributes = telemetry.pipeline.resource.attributes  # type: ignore[union-attr]
    assert attributes["service.name"] == "svc" and attributes["service.version"] == "1.2.3"
    assert attributes["deployment.environment.name"] == "staging"
    assert "deployment.environment" not in attributes  # deprecated: only when asked for
    assert len(str(attributes["service.instance.id"])) == 32
    assert telemetry.pipeline.resource.schema_url.startswith("https://opentelemetry.io/schemas/1.")  # type: ignore[union-attr]


def test_the_deprecated_environment_attribute_comes_only_when_asked() -> None:
    telemetry = atoms_otel.configure(
        environment="prod", resource_attributes={"deployment.environment": "prod"}, advanced=_quiet()
    )
    attributes = telemetry.pipeline.resource.attributes  # type: ignore[union-attr]
    assert (
        attributes["deployment.environment"] == "prod" and attributes["deployment.environment.name"] == "prod"
    )


def test_invalid_setting_raises_and_keeps_the_previous_setup(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bad value fails configure() and leaves the running configuration untouched."""
    first = atoms_otel.configure(service_name="first", advanced=_quiet())
    monkeypatch.setenv("ATOMS_OTEL_LOG_FORMAT", "xml")
    with pytest.raises(ConfigurationError, match="ATOMS_OTEL_LOG_FORMAT='xml'"):
        atoms_otel.configure(service_name="second")
    assert get_telemetry() is first and first.pipeline is not None
    with trace.get_tracer("t").start_as_current_span("still-recording") as span:
        assert span.is_recording()


def test_grpc_without_the_extra_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """OTEL_EXPORTER_OTLP_PROTOCOL=grpc without the grpc exporter names the fix."""
    import builtins

    real_import = builtins.__import__

    def no_grpc(name: str, *args: object, **kwargs: object) -> object:
        if name.startswith("opentelemetry.exporter.otlp.proto.grpc"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(builtins, "__import__", no_grpc)
    with pytest.raises(ConfigurationError, match=r"atoms-otel\[grpc\]"):
        atoms_otel.configure(otlp_endpoint="http://127.0.0.1:4317", otlp_protocol="grpc", advanced=_quiet())
    assert get_telemetry() is None


def test_sdk_disabled_gives_noop_telemetry_and_a_working_app(monkeypatch: pytest.MonkeyPatch) -> None:
    """OTEL_SDK_DISABLED=true: spans don't record, /metrics is empty, the app still serves."""
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    app = FastAPI()

    @app.get("/ok")
    def ok() -> dict[str, bool]:
        return {"ok": True}

    telemetry = atoms_otel.configure(app=app, advanced=_quiet())
    assert not telemetry.enabled
    with trace.get_tracer("t").start_as_current_span("x") as span:
        assert not span.is_recording()
    atoms_otel.record_http_request("GET", "/ok", 200, 0.1)
    client = TestClient(app)
    assert client.get("/ok").json() == {"ok": True}
    assert client.get("/metrics").text == ""


def test_reconfigure_replaces_and_shuts_down_the_previous_pipeline() -> None:
    """The second configure() swaps providers in; the first pipeline's exporters are shut down."""
    first_exporter = InMemorySpanExporter()
    first = atoms_otel.configure(
        service_name="one",
        advanced=AdvancedOptions(
            span_exporters=[first_exporter], log_stream=io.StringIO(), synchronous_export=True
        ),
    )
    second_exporter = InMemorySpanExporter()
    second = atoms_otel.configure(
        service_name="two",
        advanced=AdvancedOptions(
            span_exporters=[second_exporter], log_stream=io.StringIO(), synchronous_export=True
        ),
    )
    with trace.get_tracer("t").start_as_current_span("after"):
        pass
    assert second is first and first.settings.service_name == "two"  # one handle, new configuration
    assert first_exporter._stopped  # shut down with its pipeline
    assert [s.name for s in second_exporter.get_finished_spans()] == ["after"]
    assert second_exporter.get_finished_spans()[0].resource.attributes["service.name"] == "two"


def test_tracers_obtained_before_configure_record_after() -> None:
    """A module-level tracer from the OTel API records once configure() has run."""
    early = trace.get_tracer("early.module")
    exporter = InMemorySpanExporter()
    atoms_otel.configure(
        advanced=AdvancedOptions(span_exporters=[exporter], log_stream=io.StringIO(), synchronous_export=True)
    )
    with early.start_as_current_span("early-span"):
        pass
    assert [s.name for s in exporter.get_finished_spans()] == ["early-span"]


def test_shutdown_is_idempotent_and_safe_before_configure() -> None:
    """shutdown() twice, or with nothing configured, is harmless; spans become no-ops."""
    atoms_otel.shutdown()
    atoms_otel.configure(advanced=_quiet())
    atoms_otel.shutdown()
    atoms_otel.shutdown()
    assert get_telemetry() is None
    with trace.get_tracer("t").start_as_current_span("after-shutdown") as span:
        assert not span.is_recording()
    assert atoms_otel.force_flush() is True


def test_force_flush_exports_buffered_spans() -> None:
    """With batch export, force_flush() pushes what is buffered now."""
    exporter = InMemorySpanExporter()
    telemetry = atoms_otel.configure(advanced=AdvancedOptions(log_stream=io.StringIO()))
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    telemetry.pipeline.tracer_provider.add_span_processor(
        BatchSpanProcessor(exporter, schedule_delay_millis=60_000)
    )  # type: ignore[union-attr]
    with trace.get_tracer("t").start_as_current_span("buffered"):
        pass
    assert exporter.get_finished_spans() == ()
    assert atoms_otel.force_flush(timeout_s=5) is True
    assert [s.name for s in exporter.get_finished_spans()] == ["buffered"]


def test_configure_with_app_serves_metrics_once() -> None:
    """configure(app=app) adds GET /metrics; configuring again does not add it twice."""
    app = FastAPI()
    atoms_otel.configure(app=app, advanced=_quiet())
    atoms_otel.configure(app=app, advanced=_quiet())
    assert route_paths(app.router.routes).count("/metrics") == 1
    atoms_otel.record_error("E", "s")
    response = TestClient(app).get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    assert 'errors_total{error_type="E",source="s"} 1.0' in response.text


def test_configure_with_something_that_is_not_fastapi_fails_clearly() -> None:
    """app= must be a FastAPI application."""
    with pytest.raises(TypeError, match="FastAPI"):
        atoms_otel.configure(app=object(), advanced=_quiet())


class _RecordingPlugin:
    def __init__(self) -> None:
        self.events: list[str] = []
        self.telemetry: atoms_otel.Telemetry | None = None

    def setup(self, telemetry: atoms_otel.Telemetry) -> None:
        self.telemetry = telemetry
        telemetry.events.subscribe("demo.", lambda e: self.events.append(e.kind))

    def shutdown(self) -> None:
        self.events.append("shutdown")


def test_plugins_are_set_up_receive_events_and_are_shut_down() -> None:
    """A plugin gets the Telemetry handle, hears events it subscribed to, and is shut down."""
    plugin = _RecordingPlugin()
    telemetry = atoms_otel.configure(plugins=[plugin], advanced=_quiet())
    telemetry.events.publish(Event(kind="demo.happened"))
    telemetry.events.publish(Event(kind="other.thing"))
    atoms_otel.shutdown()
    assert plugin.telemetry is telemetry and plugin.events == ["demo.happened", "shutdown"]


class _BrokenPlugin:
    def setup(self, telemetry: atoms_otel.Telemetry) -> None:
        raise RuntimeError("plugin bug")

    def shutdown(self) -> None:
        raise RuntimeError("never set up")


def test_a_failing_plugin_is_contained_and_reported_once(caplog: pytest.LogCaptureFixture) -> None:
    """configure() still succeeds; the failure is logged once and counted."""
    _guard.raise_internal_errors = False
    with caplog.at_level(logging.ERROR, logger="atoms_otel"):
        telemetry = atoms_otel.configure(plugins=[_BrokenPlugin()], advanced=_quiet())
        atoms_otel.configure(plugins=[_BrokenPlugin()], advanced=_quiet())
    assert telemetry is not None
    assert _guard.internal_error_counts()["plugin _BrokenPlugin setup"] == 2
    assert sum("plugin _BrokenPlugin setup" in r.getMessage() for r in caplog.records) == 1


def test_a_failing_event_subscriber_does_not_reach_the_publisher() -> None:
    """publish() never raises because a subscriber did."""
    _guard.raise_internal_errors = False
    telemetry = atoms_otel.configure(advanced=_quiet())
    received: list[str] = []
    telemetry.events.subscribe("", lambda e: 1 / 0)  # type: ignore[arg-type,return-value]
    telemetry.events.subscribe("", lambda e: received.append(e.kind))
    telemetry.events.publish(Event(kind="x"))
    assert received == ["x"]


def test_capture_fixture_and_configure_share_the_pipeline(capture_telemetry: CapturedTelemetry) -> None:
    """The testing fixture is an ordinary configure(): get_telemetry() returns its handle."""
    assert get_telemetry() is capture_telemetry.telemetry


def test_without_an_endpoint_nothing_exports_anywhere() -> None:
    """No OTLP endpoint: no OTLP exporter is built, so nothing tries to connect."""
    telemetry = atoms_otel.configure(advanced=_quiet())
    assert telemetry.pipeline is not None
    assert telemetry.pipeline.exporters == [] and telemetry.pipeline.destinations == {}
    assert not telemetry.settings.exporting


def test_a_forked_worker_gets_its_own_instance_id() -> None:
    """A worker forked after configure() (gunicorn --preload) reports its own service.instance.id
    on spans, logs and /metrics, while the parent keeps its own."""
    import os

    from atoms_otel.otel.resource import service_instance_id

    telemetry = atoms_otel.configure(advanced=_quiet())
    assert telemetry.pipeline is not None
    parent = service_instance_id()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: report its id, and the id its inherited pipeline now carries
        resource = telemetry.pipeline.tracer_provider.resource.attributes["service.instance.id"]
        logs = telemetry.pipeline.logger_provider.resource.attributes["service.instance.id"]
        own = service_instance_id()
        atoms_otel.record_error("E", "forked-worker")  # target_info is shown with the first data
        exposed = f'service_instance_id="{own}"' in telemetry.metrics_text().decode()
        os.write(write_end, f"{own} {resource} {logs} {exposed}".encode())
        os._exit(0)
    os.close(write_end)
    child, traced, logged, exposed = os.read(read_end, 256).decode().split()
    os.waitpid(pid, 0)
    assert child != parent and service_instance_id() == parent
    assert traced == logged == child and exposed == "True"
    assert telemetry.pipeline.tracer_provider.resource.attributes["service.instance.id"] == parent


def test_exemplars_are_trace_based_in_every_mode_unless_set(monkeypatch: pytest.MonkeyPatch) -> None:
    """Scraped (/metrics shows them in OpenMetrics) or pushed, exemplars are trace-based;
    OTEL_METRICS_EXEMPLAR_FILTER overrides either way."""
    from opentelemetry.sdk.metrics import (
        AlwaysOffExemplarFilter,
        AlwaysOnExemplarFilter,
        TraceBasedExemplarFilter,
    )

    def current_filter(telemetry: atoms_otel.Telemetry) -> object:
        assert telemetry.pipeline is not None
        return telemetry.pipeline.meter_provider._sdk_config.exemplar_filter

    assert isinstance(current_filter(atoms_otel.configure(advanced=_quiet())), TraceBasedExemplarFilter)
    exporting = atoms_otel.configure(otlp_endpoint="http://127.0.0.1:9", advanced=_quiet())
    assert isinstance(current_filter(exporting), TraceBasedExemplarFilter)
    monkeypatch.setenv("OTEL_METRICS_EXEMPLAR_FILTER", "always_on")
    assert isinstance(current_filter(atoms_otel.configure(advanced=_quiet())), AlwaysOnExemplarFilter)
    monkeypatch.setenv("OTEL_METRICS_EXEMPLAR_FILTER", "always_off")
    assert isinstance(current_filter(atoms_otel.configure(advanced=_quiet())), AlwaysOffExemplarFilter)
