"""configure(app=app): what it installs on a FastAPI app, and the end-to-end trip to a collector."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from opentelemetry.trace import SpanKind

import atoms_otel
from atoms_otel import AdvancedOptions, MetricsOptions, TelemetryMiddleware, get_logger
from atoms_otel.testing import CapturedTelemetry
from tests.support.collector import Collector
from tests.support.server import serve

log = get_logger("tests.service")


def make_app() -> FastAPI:
    app = FastAPI()

    @app.get("/items/{item_id}")
    async def read_item(item_id: int) -> dict[str, int]:
        log.info("reading item", item_id=item_id)
        return {"item_id": item_id}

    return app


def test_configure_installs_the_middleware_once(capture_telemetry: CapturedTelemetry) -> None:
    """Calling configure(app=app) again adds nothing twice: one layer, one count per request."""
    app = make_app()
    capture_telemetry.reconfigure(app=app)
    capture_telemetry.reconfigure(app=app, service_name="again")
    assert [m.cls for m in app.user_middleware] == [TelemetryMiddleware]
    with TestClient(app) as client:
        client.get("/items/1")
    assert capture_telemetry.metric_value("http_requests_total", path="/items/{item_id}") == 1


def test_configure_gives_one_server_span_per_request(capture_telemetry: CapturedTelemetry) -> None:
    """FastAPI's native telemetry is switched off for the app, so its span does not double ours."""
    app = make_app()
    capture_telemetry.reconfigure(app=app)
    with TestClient(app) as client:
        client.get("/items/1")
    servers = [s for s in capture_telemetry.spans if s.kind is SpanKind.SERVER]
    assert [(s.name, s.instrumentation_scope.name) for s in servers] == [
        ("GET /items/{item_id}", "atoms_otel")
    ]
    assert not [s for s in capture_telemetry.spans if s.name.startswith("fastapi.")]


def test_metrics_endpoint_serves_the_request_metrics(capture_telemetry: CapturedTelemetry) -> None:
    """configure(app=) adds GET /metrics, which shows the request just served."""
    app = make_app()
    capture_telemetry.reconfigure(app=app)
    with TestClient(app) as client:
        client.get("/items/1")
        text = client.get("/metrics").text
    assert 'http_requests_total{method="GET",path="/items/{item_id}",status="200"} 1.0' in text


def test_configure_after_the_app_started_still_instruments_it(capture_telemetry: CapturedTelemetry) -> None:
    """An app whose middleware stack is already built gets the middleware wrapped around it."""
    app = make_app()
    with TestClient(app) as client:
        client.get("/items/1")  # builds the stack without us
        capture_telemetry.reconfigure(app=app)
        response = client.get("/items/2", headers={"X-Correlation-ID": "late-1"})
    assert response.headers["x-correlation-id"] == "late-1"
    assert capture_telemetry.metric_value("http_requests_total", path="/items/{item_id}") == 1


@pytest.fixture
def exporting_app(collector: Collector) -> Iterator[tuple[FastAPI, atoms_otel.Telemetry]]:
    app = make_app()
    telemetry = atoms_otel.configure(
        app=app,
        service_name="atoms-e2e",
        otlp_endpoint=collector.http_endpoint,
        metrics=MetricsOptions(export_interval_ms=60_000),
        advanced=AdvancedOptions(log_stream=io.StringIO()),
    )
    try:
        yield app, telemetry
    finally:
        atoms_otel.shutdown()


@pytest.mark.real
def test_a_request_reaches_the_collector_as_span_metrics_and_log(
    exporting_app: tuple[FastAPI, atoms_otel.Telemetry], collector: Collector
) -> None:
    """Through uvicorn and OTLP: the server span, the request metrics and the handler's log line
    arrive at a real collector, tied together by trace id and correlation id."""
    app, telemetry = exporting_app
    with serve(app) as base_url:
        response = httpx.get(f"{base_url}/items/7", headers={"X-Correlation-ID": "e2e-7"})
    assert response.status_code == 200
    assert telemetry.force_flush(10)

    def arrived(c: Collector) -> Any:
        spans = [s for s in c.spans() if s["name"] == "GET /items/{item_id}"]
        logs = [x for x in c.logs() if x["body"] == "reading item"]
        metrics = [m for m in c.metrics() if m["name"] == "http.requests"]
        return (spans, logs, metrics) if spans and logs and metrics else None

    spans, logs, metrics = collector.wait_for(arrived)
    [span] = spans
    assert span["resource"]["service.name"] == "atoms-e2e"
    assert span["attributes"]["http.route"] == "/items/{item_id}"
    assert span["attributes"]["http.response.status_code"] == 200
    assert span["attributes"]["atoms.correlation_id"] == "e2e-7"
    [line] = logs
    assert line["trace_id"] == span["trace_id"] and line["attributes"]["atoms.correlation_id"] == "e2e-7"
    points = [p for m in metrics for p in m["points"]]
    assert any(
        p["attributes"] == {"method": "GET", "path": "/items/{item_id}", "status": "200"} and p["value"] == 1
        for p in points
    ), json.dumps(points)
