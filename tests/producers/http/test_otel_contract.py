"""The OTel HTTP contract: semconv metrics, the instrumentors' excluded-URL and captured-header
variables, the server span's semconv attributes, and the collector freeze after startup."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import textwrap
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Response
from fastapi.testclient import TestClient
from opentelemetry.sdk.metrics.export import HistogramDataPoint
from opentelemetry.semconv._incubating.metrics.http_metrics import HTTP_SERVER_ACTIVE_REQUESTS
from opentelemetry.semconv.metrics.http_metrics import HTTP_SERVER_REQUEST_DURATION
from opentelemetry.trace import SpanKind

import atoms_otel
from atoms_otel import AdvancedOptions, ConfigurationError, MetricsOptions
from atoms_otel.otel.metrics import DURATION_BUCKETS
from atoms_otel.testing import CapturedTelemetry
from tests.support.collector import Collector
from tests.support.server import serve


def make_app(capture: CapturedTelemetry | None = None) -> FastAPI:
    app = FastAPI()

    @app.get("/items/{item_id}")
    async def read_item(item_id: int, response: Response) -> dict[str, Any]:
        response.headers["X-Cache"] = "miss"
        response.headers["X-Internal-Node"] = "node-7"
        active = capture.metric_value(HTTP_SERVER_ACTIVE_REQUESTS) if capture else None
        return {"item_id": item_id, "active": active}

    @app.get("/boom")
    async def boom() -> None:
        raise ValueError("no")

    @app.get("/ping")
    async def ping() -> dict[str, str]:
        return {"status": "ok"}

    return app


def server_spans(capture: CapturedTelemetry) -> list[Any]:
    return [s for s in capture.spans if s.kind is SpanKind.SERVER]


def duration_points(capture: CapturedTelemetry) -> list[HistogramDataPoint]:
    metric = capture.metrics().get(HTTP_SERVER_REQUEST_DURATION)
    return list(metric.data.data_points) if metric is not None else []  # type: ignore[arg-type]


# -- semconv metrics --------------------------------------------------------------------------


def test_request_duration_follows_the_http_semantic_conventions(capture_telemetry: CapturedTelemetry) -> None:
    """http.server.request.duration: seconds, semconv buckets, required and recommended attributes
    (status code an int; server.address/port are opt-in and left out)."""
    with TestClient(make_app_for(capture_telemetry)) as client:
        client.get("/items/1")
        client.get("/items/2")
    [point] = duration_points(capture_telemetry)
    assert dict(point.attributes or {}) == {
        "http.request.method": "GET",
        "url.scheme": "http",
        "http.route": "/items/{item_id}",
        "http.response.status_code": 200,
        "network.protocol.version": "1.1",
    }
    assert point.count == 2 and 0 < point.sum < 5
    semconv_buckets = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
    assert tuple(point.explicit_bounds) == DURATION_BUCKETS == semconv_buckets
    assert capture_telemetry.metrics()[HTTP_SERVER_REQUEST_DURATION].unit == "s"


def make_app_for(capture: CapturedTelemetry) -> FastAPI:
    app = make_app(capture)
    capture.reconfigure(app=app)
    return app


def test_a_failed_request_carries_error_type_on_the_duration(capture_telemetry: CapturedTelemetry) -> None:
    """An exception: error.type is the exception's type, the same value as on the span."""
    with TestClient(make_app_for(capture_telemetry), raise_server_exceptions=False) as client:
        client.get("/boom")
    [point] = duration_points(capture_telemetry)
    assert dict(point.attributes or {})["error.type"] == "ValueError"
    assert dict(point.attributes or {})["http.response.status_code"] == 500
    assert server_spans(capture_telemetry)[0].attributes["error.type"] == "ValueError"


def test_active_requests_counts_the_request_in_flight(capture_telemetry: CapturedTelemetry) -> None:
    """http.server.active_requests is 1 inside the handler and 0 once the response is out."""
    with TestClient(make_app_for(capture_telemetry)) as client:
        inside = client.get("/items/1").json()["active"]
    assert inside == 1
    assert capture_telemetry.metric_value(HTTP_SERVER_ACTIVE_REQUESTS, **{"http.request.method": "GET"}) == 0
    metric = capture_telemetry.metrics()[HTTP_SERVER_ACTIVE_REQUESTS]
    assert {"http.request.method": "GET", "url.scheme": "http"} in [
        dict(p.attributes or {}) for p in metric.data.data_points
    ]


def test_semconv_metrics_can_be_turned_off(
    capture_telemetry: CapturedTelemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ATOMS_OTEL_HTTP_SEMCONV_METRICS=false: only the spec's Prometheus metrics are recorded."""
    monkeypatch.setenv("ATOMS_OTEL_HTTP_SEMCONV_METRICS", "false")
    with TestClient(make_app_for(capture_telemetry)) as client:
        client.get("/items/1")
    assert duration_points(capture_telemetry) == []
    assert HTTP_SERVER_ACTIVE_REQUESTS not in capture_telemetry.metrics()
    assert capture_telemetry.metric_value("http_requests_total", path="/items/{item_id}") == 1


def test_scrape_only_metrics_stay_lean() -> None:
    """No OTLP endpoint and no extra reader: /metrics has the spec's names, not the semconv ones."""
    app = make_app()
    telemetry = atoms_otel.configure(
        app=app, service_name="lean", advanced=AdvancedOptions(log_stream=io.StringIO())
    )
    try:
        with TestClient(app) as client:
            client.get("/items/1")
        text = telemetry.metrics_text().decode()
    finally:
        atoms_otel.shutdown()
    assert 'http_requests_total{method="GET",path="/items/{item_id}",status="200"} 1.0' in text
    assert "http_server_request_duration" not in text and "http_server_active_requests" not in text


@pytest.mark.real
def test_semconv_metrics_reach_a_real_collector(collector: Collector) -> None:
    """Through uvicorn and OTLP: http.server.request.duration arrives with its semconv attributes."""
    app = make_app()
    telemetry = atoms_otel.configure(
        app=app,
        service_name="semconv-e2e",
        otlp_endpoint=collector.http_endpoint,
        metrics=MetricsOptions(export_interval_ms=60_000),
        advanced=AdvancedOptions(log_stream=io.StringIO()),
    )
    try:
        with serve(app) as base_url:
            assert httpx.get(f"{base_url}/items/7").status_code == 200
        assert telemetry.force_flush(10)

        def arrived(c: Collector) -> Any:
            return [m for m in c.metrics() if m["name"] == HTTP_SERVER_REQUEST_DURATION]

        metrics = collector.wait_for(arrived)
    finally:
        atoms_otel.shutdown()
    assert metrics[0]["unit"] == "s" and metrics[0]["type"] == "Histogram"
    points = [p for m in metrics for p in m["points"]]
    assert {"count": 1} | points[0]["attributes"] == {
        "count": points[0]["count"],
        "http.request.method": "GET",
        "url.scheme": "http",
        "http.route": "/items/{item_id}",
        "http.response.status_code": 200,
        "network.protocol.version": "1.1",
    }


# -- the server span's semconv attributes ---------------------------------------------------


def test_server_span_has_every_required_and_recommended_http_attribute(
    capture_telemetry: CapturedTelemetry,
) -> None:
    """url.*, http.*, server.*, client.address, network.protocol.version, user_agent.original."""
    with TestClient(make_app_for(capture_telemetry), base_url="http://api.example:8443") as client:
        client.get("/items/5?q=1", headers={"User-Agent": "tests/1.0"})
    [span] = server_spans(capture_telemetry)
    assert dict(span.attributes or {}) | {"atoms.correlation_id": "-"} == {
        "http.request.method": "GET",
        "url.scheme": "http",
        "url.path": "/items/5",
        "url.query": "q=1",
        "http.route": "/items/{item_id}",
        "http.response.status_code": 200,
        "server.address": "api.example",
        "server.port": 8443,
        "client.address": "testclient",
        "network.protocol.version": "1.1",
        "user_agent.original": "tests/1.0",
        "atoms.correlation_id": "-",
    }


def test_sampled_out_requests_are_still_measured(
    capture_telemetry: CapturedTelemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a sampler that drops every span, no span is exported but the metrics still count."""
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "traceidratio")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "0")
    with TestClient(make_app_for(capture_telemetry)) as client:
        response = client.get("/items/1")
    assert response.headers["x-correlation-id"] and "app;dur=" in response.headers["server-timing"]
    assert server_spans(capture_telemetry) == []
    assert capture_telemetry.metric_value("http_requests_total", path="/items/{item_id}") == 1
    assert duration_points(capture_telemetry)[0].count == 1


# -- OTEL_PYTHON_*_EXCLUDED_URLS --------------------------------------------------------------


@pytest.mark.parametrize(
    ("variables", "excluded"),
    [
        ({"OTEL_PYTHON_EXCLUDED_URLS": "ping"}, ["/ping"]),
        ({"OTEL_PYTHON_FASTAPI_EXCLUDED_URLS": "items/1$,pin"}, ["/items/1", "/ping"]),
        (  # the FastAPI-specific variable wins over the generic one, as in the contrib instrumentor
            {"OTEL_PYTHON_FASTAPI_EXCLUDED_URLS": "items/2", "OTEL_PYTHON_EXCLUDED_URLS": "ping"},
            ["/items/2"],
        ),
        ({}, []),
    ],
)
def test_otel_excluded_urls_get_no_span_but_are_counted(
    capture_telemetry: CapturedTelemetry,
    monkeypatch: pytest.MonkeyPatch,
    variables: dict[str, str],
    excluded: list[str],
) -> None:
    """The OTel variables' regexes, searched in the full URL, add to ATOMS_OTEL_EXCLUDED_URLS."""
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    paths = ["/items/1", "/items/2", "/ping"]
    with TestClient(make_app_for(capture_telemetry)) as client:
        for path in paths:
            client.get(path)
    traced = sorted(s.attributes["url.path"] for s in server_spans(capture_telemetry))
    assert traced == sorted(p for p in paths if p not in excluded)
    assert capture_telemetry.metric_value("http_requests_total") == len(paths)


def test_an_invalid_excluded_url_pattern_fails_configure(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_PYTHON_EXCLUDED_URLS", "ok,(unclosed")
    with pytest.raises(ConfigurationError, match=r"OTEL_PYTHON_EXCLUDED_URLS=.*not a regular expression"):
        atoms_otel.configure(service_name="x", advanced=AdvancedOptions(log_stream=io.StringIO()))


# -- captured headers -------------------------------------------------------------------------


def test_captured_headers_become_span_attributes(
    capture_telemetry: CapturedTelemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Request and response headers named by the OTel variables, sanitised where asked."""
    monkeypatch.setenv(
        "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST", "x-tenant,X-Api-.*,x-client-region"
    )
    monkeypatch.setenv(
        "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_RESPONSE", "x-cache, x-internal-node"
    )
    monkeypatch.setenv(
        "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SANITIZE_FIELDS", "x-client-region,.*internal.*"
    )
    with TestClient(make_app_for(capture_telemetry)) as client:
        client.get(
            "/items/1",
            headers=[
                ("X-Tenant", "acme"),
                ("X-Tenant", "beta"),
                ("X-Client-Region", "eu-1"),
                ("X-Api-Version", "2"),
                ("X-Other", "o"),
            ],
        )
    [span] = server_spans(capture_telemetry)
    captured = {k: v for k, v in (span.attributes or {}).items() if ".header." in k}
    assert captured == {
        "http.request.header.x_tenant": ("acme", "beta"),
        "http.request.header.x_client_region": ("[REDACTED]",),
        "http.request.header.x_api_version": ("2",),
        "http.response.header.x_cache": ("miss",),
        "http.response.header.x_internal_node": ("[REDACTED]",),
    }


def test_no_header_is_captured_when_the_variables_are_unset(capture_telemetry: CapturedTelemetry) -> None:
    with TestClient(make_app_for(capture_telemetry)) as client:
        client.get("/items/1", headers={"X-Tenant": "acme"})
    [span] = server_spans(capture_telemetry)
    assert not [k for k in (span.attributes or {}) if ".header." in k]


# -- the collector freeze ---------------------------------------------------------------------

_FREEZE_PROBE = textwrap.dedent(
    """
    import gc, io, httpx, atoms_otel
    from fastapi import FastAPI
    from tests.support.server import serve
    app = FastAPI()
    @app.get("/")
    async def root() -> dict[str, int]:
        return {"frozen": gc.get_freeze_count()}
    options = atoms_otel.AdvancedOptions(log_stream=io.StringIO())
    atoms_otel.configure(app=app, service_name="gc", advanced=options)
    with serve(app) as url:
        first = httpx.get(url).json()["frozen"]
        second = httpx.get(url).json()["frozen"]
    atoms_otel.shutdown()
    print(first, second > 0)
    """
)


@pytest.mark.parametrize(("setting", "expected"), [("true", "0 True"), ("false", "0 False")])
def test_the_startup_heap_is_frozen_after_the_first_request(setting: str, expected: str) -> None:
    """Under a real uvicorn: the first request runs unfrozen, later ones with the startup heap
    frozen (full collections skip it); ATOMS_OTEL_GC_FREEZE=false leaves the collector alone."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    env = {**os.environ, "ATOMS_OTEL_GC_FREEZE": setting, "PYTHONPATH": root}
    result = subprocess.run(
        [sys.executable, "-c", _FREEZE_PROBE], env=env, cwd=root, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == expected


def test_url_path_is_stamped_on_the_server_span_only(capture_telemetry: CapturedTelemetry) -> None:
    """Spans opened inside the handler carry the request context (correlation id) but not the
    incoming request's url.path: it would contradict a CLIENT span's own URL."""
    app = FastAPI()

    @app.get("/orders/{order_id}")
    async def order(order_id: int) -> dict[str, int]:
        tracer = capture_telemetry.telemetry.tracer  # type: ignore[union-attr]
        with (
            tracer.start_as_current_span("load order"),
            tracer.start_as_current_span("GET", kind=SpanKind.CLIENT),
        ):
            pass
        return {"order_id": order_id}

    capture_telemetry.reconfigure(app=app)
    with TestClient(app) as client:
        client.get("/orders/3", headers={"X-Correlation-ID": "c-3"})
    spans = {s.name: dict(s.attributes or {}) for s in capture_telemetry.spans}
    assert spans["GET /orders/{order_id}"]["url.path"] == "/orders/3"
    for name in ("load order", "GET"):
        assert "url.path" not in spans[name] and spans[name]["atoms.correlation_id"] == "c-3"
