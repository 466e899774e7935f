"""The trace explorer's API: response models, filters, JSON 404s, bounded parameters, the token."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI, HTTPException
from fastapi.testclient import TestClient
from opentelemetry import trace

from atoms_otel.endpoints.explorer_models import LogsResponse, TraceDetailResponse, TracesResponse
from atoms_otel.testing import CapturedTelemetry
from tests.support.health import isolated_health_state

TOKEN = "explorer-token-81c2"
_log = logging.getLogger("shop.orders")


@pytest.fixture(autouse=True)
def _isolated() -> Iterator[None]:
    with isolated_health_state():
        yield


def _app(capture: CapturedTelemetry, **options: Any) -> FastAPI:
    app = FastAPI()

    @app.get("/orders/{order_id}")
    def order(order_id: int) -> dict[str, int]:
        with trace.get_tracer("shop").start_as_current_span("load order") as span:
            span.set_attribute("order.id", order_id)
            _log.info("loading order %d", order_id, extra={"api_key": "k-123", "order": order_id})
        if order_id == 13:
            _log.error("order %d is cursed password=hunter2", order_id)
            raise HTTPException(500, "cursed")
        return {"order_id": order_id}

    @app.get("/slow")
    def slow() -> dict[str, str]:
        with trace.get_tracer("shop").start_as_current_span("sleep"):
            import time

            time.sleep(0.06)
        return {}

    capture.reconfigure(app=app, service_name="explorer-api", **options)
    return app


@pytest.fixture
def client(capture_telemetry: CapturedTelemetry) -> TestClient:
    client = TestClient(_app(capture_telemetry), raise_server_exceptions=False)
    for order_id in (1, 2, 13):
        client.get(f"/orders/{order_id}", headers={"X-Correlation-ID": f"corr-{order_id}"})
    client.get("/slow")
    return client


def _traces(client: TestClient, **params: Any) -> TracesResponse:
    response = client.get("/api/observability/traces", params=params)
    assert response.status_code == 200, response.text
    return TracesResponse.model_validate(response.json())


def test_traces_lists_requests_newest_first_with_their_summary(client: TestClient) -> None:
    """Each request is one trace: route, status, duration, correlation id, spans and log lines."""
    body = _traces(client)
    assert body.enabled and body.matching == 4
    assert [t.name for t in body.traces] == [
        "GET /slow",
        "GET /orders/{order_id}",
        "GET /orders/{order_id}",
        "GET /orders/{order_id}",
    ]
    failed = body.traces[1]
    assert (failed.status_code, failed.status_class, failed.error, failed.correlation_id) == (
        500,
        "5xx",
        True,
        "corr-13",
    )
    assert (failed.span_count, failed.log_count, failed.complete) == (2, 2, True)
    assert body.stats is not None and body.stats.traces == 4 and body.stats.recent_traces == 500


@pytest.mark.parametrize(
    ("params", "found"),
    [
        ({"q": "corr-2"}, ["corr-2"]),
        ({"q": "ORDERS"}, ["corr-13", "corr-2", "corr-1"]),
        ({"status": "5xx"}, ["corr-13"]),
        ({"status": "error"}, ["corr-13"]),
        ({"status": "2xx", "route": "/orders/{order_id}"}, ["corr-2", "corr-1"]),
        ({"min_ms": 50}, ["slow"]),
        ({"limit": 2}, ["slow", "corr-13"]),
    ],
)
def test_traces_filters(client: TestClient, params: dict[str, Any], found: list[str]) -> None:
    """q (correlation id, text), status class or error, exact route, min_ms and limit."""
    traces = _traces(client, **params).traces
    assert [t.correlation_id if t.route != "/slow" else "slow" for t in traces] == found


def test_a_trace_id_finds_its_trace_and_its_detail(client: TestClient) -> None:
    """q= a trace id (any case) finds it; /traces/{id} has the spans with parents and the log lines."""
    failed = _traces(client, status="error").traces[0]
    assert [t.trace_id for t in _traces(client, q=failed.trace_id.upper()).traces] == [failed.trace_id]
    response = client.get(f"/api/observability/traces/{failed.trace_id}")
    detail = TraceDetailResponse.model_validate(response.json())
    server, child = detail.spans
    assert (server.name, server.parent_span_id, server.kind) == ("GET /orders/{order_id}", None, "SERVER")
    assert (child.name, child.parent_span_id, child.attributes["order.id"]) == (
        "load order",
        server.span_id,
        13,
    )
    assert child.offset_ms >= 0 and child.offset_ms + child.duration_ms <= server.duration_ms + 0.001
    messages = [line.message for line in detail.logs]
    assert messages[:2] == ["loading order 13", "order 13 is cursed password=[REDACTED]"]
    assert detail.logs[0].fields["api_key"] == "[REDACTED]" and detail.logs[0].fields["order"] == 13
    assert all(line.trace_id == failed.trace_id for line in detail.logs)


def test_unknown_trace_is_a_json_404(client: TestClient) -> None:
    """A well-formed id that is not kept: 404 with a JSON detail."""
    response = client.get("/api/observability/traces/" + "ab" * 16)
    assert response.status_code == 404
    assert response.json() == {"detail": f"trace {'ab' * 16} is not kept"}
    assert response.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/traces", {"limit": 0}, "limit"),
        ("/traces", {"limit": 501}, "limit"),
        ("/traces", {"min_ms": -1}, "min_ms"),
        ("/traces", {"min_ms": 3_600_001}, "min_ms"),
        ("/traces", {"q": "x" * 201}, "q"),
        ("/traces", {"route": "/" * 201}, "route"),
        ("/traces", {"status": "6xx"}, "status"),
        ("/traces/not-a-trace-id", {}, "trace_id"),
        ("/logs", {"limit": 1001}, "limit"),
        ("/logs", {"level": "LOUD"}, "level"),
        ("/logs", {"trace_id": "123"}, "trace_id"),
        ("/logs", {"logger": "l" * 201}, "logger"),
    ],
)
def test_parameters_out_of_bounds_are_a_422_naming_them(
    client: TestClient, path: str, params: dict[str, Any], field: str
) -> None:
    """Every parameter is bounded; the 422 says which one and why."""
    response = client.get(f"/api/observability{path}", params=params)
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"][-1] == field and error["msg"]


def test_logs_are_scrubbed_and_filtered(client: TestClient) -> None:
    """Level is a minimum, logger a prefix, q text in the (scrubbed) message, trace_id exact."""
    body = LogsResponse.model_validate(
        client.get("/api/observability/logs", params={"logger": "shop."}).json()
    )
    assert [line.message for line in body.logs] == [
        "order 13 is cursed password=[REDACTED]",
        "loading order 13",
        "loading order 2",
        "loading order 1",
    ]
    errors = client.get("/api/observability/logs", params={"level": "ERROR", "logger": "shop"}).json()["logs"]
    assert [line["message"] for line in errors] == ["order 13 is cursed password=[REDACTED]"]
    assert client.get("/api/observability/logs", params={"q": "hunter2"}).json()["matching"] == 0
    trace_id = body.logs[-1].trace_id
    by_trace = client.get("/api/observability/logs", params={"trace_id": trace_id, "logger": "shop"}).json()
    assert [line["message"] for line in by_trace["logs"]] == ["loading order 1"]


def test_the_explorer_api_needs_the_token(capture_telemetry: CapturedTelemetry) -> None:
    """With api_token set, every explorer route is a 401 without it and answers with it."""
    client = TestClient(_app(capture_telemetry, api_token=TOKEN))
    client.get("/orders/1")
    trace_id = "0" * 32
    for path in ("/traces", f"/traces/{trace_id}", "/logs"):
        assert client.get(f"/api/observability{path}").status_code == 401
        answer = client.get(f"/api/observability{path}", headers={"Authorization": f"Bearer {TOKEN}"})
        assert answer.status_code == (404 if path.endswith(trace_id) else 200)


def test_with_the_explorer_off_the_lists_say_so(
    capture_telemetry: CapturedTelemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ATOMS_OTEL_EXPLORER=false: enabled=false and empty lists; any trace is a 404."""
    monkeypatch.setenv("ATOMS_OTEL_EXPLORER", "false")
    client = TestClient(_app(capture_telemetry))
    client.get("/orders/1")
    assert client.get("/api/observability/traces").json() == {
        "enabled": False,
        "matching": 0,
        "traces": [],
        "stats": None,
    }
    assert client.get("/api/observability/logs").json() == {"enabled": False, "matching": 0, "logs": []}
    assert client.get("/api/observability/traces/" + "1" * 32).status_code == 404


def test_trace_url_follows_the_template(
    capture_telemetry: CapturedTelemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ATOMS_OTEL_TRACE_URL_TEMPLATE puts a link with the trace id on every trace."""
    monkeypatch.setenv(
        "ATOMS_OTEL_TRACE_URL_TEMPLATE", "http://tempo.local:3000/explore?traceId={trace_id}&x=1"
    )
    client = TestClient(_app(capture_telemetry))
    client.get("/orders/1")
    (listed,) = _traces(client).traces
    assert listed.trace_url == f"http://tempo.local:3000/explore?traceId={listed.trace_id}&x=1"
