"""The pure-ASGI request middleware: correlation, spans, metrics, timing, slow requests, errors."""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import anyio.to_thread
import httpx
import pytest
from fastapi import APIRouter, FastAPI, WebSocket
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.testclient import TestClient
from opentelemetry import baggage
from opentelemetry.trace import SpanKind, StatusCode
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route

import atoms_otel
from atoms_otel import (
    ContextPropagationMiddleware,
    ErrorTrackingMiddleware,
    Event,
    PerformanceTrackingMiddleware,
    RequestTrackingMiddleware,
    TelemetryMiddleware,
    get_logger,
    get_metrics_registry,
)
from atoms_otel.base import guard as _guard
from atoms_otel.producers.http import engine as _engine
from atoms_otel.producers.http import state as state_module
from atoms_otel.testing import CapturedTelemetry
from tests.support.server import serve

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
TRACEPARENT = f"00-{TRACE_ID}-b7ad6b7169203331-01"
log = get_logger("tests.app")


def make_app(**fastapi_options: Any) -> FastAPI:
    app = FastAPI(**fastapi_options)

    @app.get("/items/{item_id}")
    async def read_item(item_id: int) -> dict[str, int]:
        log.info("reading item", item_id=item_id)
        return {"item_id": item_id}

    @app.get("/boom")
    async def boom() -> None:
        raise ValueError("database password is hunter2")

    return app


def server_spans(capture: CapturedTelemetry) -> list[Any]:
    return [s for s in capture.spans if s.kind is SpanKind.SERVER]


@pytest.fixture
def client(capture_telemetry: CapturedTelemetry) -> Iterator[TestClient]:
    app = make_app()
    capture_telemetry.reconfigure(app=app)
    with TestClient(app) as test_client:
        yield test_client


# -- correlation id and trace context -----------------------------------------------------------


def test_correlation_id_from_the_caller_is_echoed_and_logged(
    client: TestClient, capture_telemetry: CapturedTelemetry
) -> None:
    """A valid X-Correlation-ID comes back on the response and on the request's log lines and span."""
    response = client.get("/items/1", headers={"X-Correlation-ID": "req-456:a.b_c"})
    assert response.headers["x-correlation-id"] == "req-456:a.b_c"
    line = next(x for x in capture_telemetry.log_lines if x["message"] == "reading item")
    assert line["correlation_id"] == "req-456:a.b_c" and line["request_path"] == "/items/1"
    assert server_spans(capture_telemetry)[0].attributes["atoms.correlation_id"] == "req-456:a.b_c"


def test_x_request_id_is_accepted_as_an_alias(client: TestClient) -> None:
    """X-Request-ID is used when X-Correlation-ID is absent, and echoed under both names."""
    response = client.get("/items/1", headers={"X-Request-ID": "abc-123"})
    assert response.headers["x-correlation-id"] == "abc-123"
    assert response.headers["x-request-id"] == "abc-123"


@pytest.mark.parametrize(
    "unsafe",
    ["abc def", "x" * 129, "id\r\nSet-Cookie: a=b", "<script>", "ünïcode", ""],
    ids=["space", "too-long", "header-injection", "markup", "non-ascii", "empty"],
)
def test_unsafe_correlation_ids_are_replaced(client: TestClient, unsafe: str) -> None:
    """Only short ids of letters, digits and - _ . : are trusted; anything else gets a fresh id."""
    raw = unsafe.encode("utf-8")
    response = client.get("/items/1", headers=[(b"x-correlation-id", raw)])
    echoed = response.headers["x-correlation-id"]
    assert echoed != unsafe and re.fullmatch(r"[0-9a-f]{32}", echoed)


def test_a_correlation_id_is_generated_when_absent(client: TestClient) -> None:
    """Each request without one gets its own 32-hex-character id."""
    first = client.get("/items/1").headers["x-correlation-id"]
    second = client.get("/items/1").headers["x-correlation-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", first) and first != second


def test_traceparent_continues_the_callers_trace(
    client: TestClient, capture_telemetry: CapturedTelemetry
) -> None:
    """The server span joins the caller's trace as a child of the caller's span."""
    client.get("/items/1", headers={"traceparent": TRACEPARENT})
    span = server_spans(capture_telemetry)[0]
    assert format(span.context.trace_id, "032x") == TRACE_ID
    assert span.parent is not None and format(span.parent.span_id, "016x") == "b7ad6b7169203331"
    line = next(x for x in capture_telemetry.log_lines if x["message"] == "reading item")
    assert line["trace_id"] == TRACE_ID


def test_baggage_from_the_caller_is_available_to_handlers(capture_telemetry: CapturedTelemetry) -> None:
    """W3C baggage entries can be read inside the handler (and propagate onward from there)."""
    app = FastAPI()

    @app.get("/tenant")
    async def tenant() -> dict[str, Any]:
        return {"tenant": baggage.get_baggage("tenant"), "plan": baggage.get_baggage("plan")}

    capture_telemetry.reconfigure(app=app)
    with TestClient(app) as test_client:
        response = test_client.get(
            "/tenant",
            headers=[("baggage", "tenant=acme"), ("baggage", "plan=pro"), ("traceparent", TRACEPARENT)],
        )
    assert response.json() == {"tenant": "acme", "plan": "pro"}


# -- the server span -----------------------------------------------------------------------------


def test_server_span_follows_the_http_semantic_conventions(
    client: TestClient, capture_telemetry: CapturedTelemetry
) -> None:
    """One SERVER span named "{method} {route}" with the required HTTP attributes."""
    client.get("/items/42")
    [span] = server_spans(capture_telemetry)
    assert span.name == "GET /items/{item_id}"
    attributes = dict(span.attributes or {})
    assert {
        k: attributes[k]
        for k in ("http.request.method", "http.route", "http.response.status_code", "url.scheme", "url.path")
    } == {
        "http.request.method": "GET",
        "http.route": "/items/{item_id}",
        "http.response.status_code": 200,
        "url.scheme": "http",
        "url.path": "/items/42",
    }
    assert "error.type" not in attributes and span.status.status_code is StatusCode.UNSET


def test_handler_spans_and_logs_are_children_of_the_server_span(
    client: TestClient, capture_telemetry: CapturedTelemetry
) -> None:
    """Log lines inside the handler carry the server span's trace and span ids."""
    client.get("/items/1")
    [span] = server_spans(capture_telemetry)
    line = next(x for x in capture_telemetry.log_lines if x["message"] == "reading item")
    assert line["trace_id"] == format(span.context.trace_id, "032x")
    assert line["span_id"] == format(span.context.span_id, "016x")


def test_unknown_methods_are_folded_into_other(
    client: TestClient, capture_telemetry: CapturedTelemetry
) -> None:
    """A made-up method cannot create label values: it is recorded as _OTHER (semconv)."""
    client.request("BREW", "/items/1")
    [span] = server_spans(capture_telemetry)
    assert span.attributes["http.request.method"] == "_OTHER"
    assert span.attributes["http.request.method_original"] == "BREW"
    assert capture_telemetry.metric_value("http_requests_total", method="_OTHER") == 1
    assert capture_telemetry.metric_value("http_requests_total", method="BREW") == 0


# -- metrics and the route template ----------------------------------------------------------


def test_requests_are_counted_by_route_template(
    client: TestClient, capture_telemetry: CapturedTelemetry
) -> None:
    """http_requests_total and the duration histogram carry the template, never the raw path."""
    for item in (1, 2, 3):
        client.get(f"/items/{item}")
    labels = {"method": "GET", "path": "/items/{item_id}"}
    assert capture_telemetry.metric_value("http_requests_total", **labels, status="200") == 3
    assert capture_telemetry.metric_value("http_request_duration_seconds", **labels) == 3
    assert "/items/1" not in capture_telemetry.prometheus_text()


def test_unmatched_paths_collapse_into_one_series(
    client: TestClient, capture_telemetry: CapturedTelemetry
) -> None:
    """Any number of unknown paths is one series, path="unmatched"; the span is named by method only."""
    for n in range(25):
        client.get(f"/random/{n}/probe")
    text = capture_telemetry.prometheus_text()
    assert 'http_requests_total{method="GET",path="unmatched",status="404"} 25.0' in text
    assert "/random/" not in text
    assert {s.name for s in server_spans(capture_telemetry)} == {"GET"}
    assert all("http.route" not in (s.attributes or {}) for s in server_spans(capture_telemetry))


def test_included_router_prefixes_are_part_of_the_template(capture_telemetry: CapturedTelemetry) -> None:
    """Nested include_router prefixes appear in the template, as FastAPI routed them."""
    app = FastAPI()
    api, v2 = APIRouter(prefix="/api"), APIRouter(prefix="/v2")

    @v2.get("/things/{thing_id}")
    async def thing(thing_id: str) -> dict[str, str]:
        return {"thing": thing_id}

    api.include_router(v2)
    app.include_router(api)
    capture_telemetry.reconfigure(app=app)
    with TestClient(app) as test_client:
        test_client.get("/api/v2/things/abc")
    assert server_spans(capture_telemetry)[0].name == "GET /api/v2/things/{thing_id}"
    assert capture_telemetry.metric_value("http_requests_total", path="/api/v2/things/{thing_id}") == 1


def test_mounted_apps_with_parameters_stay_bounded(capture_telemetry: CapturedTelemetry) -> None:
    """A Starlette app mounted under a parameterised prefix is labelled by templates only."""

    async def thing(request: Request) -> PlainTextResponse:
        return PlainTextResponse(request.path_params["thing_id"])

    app = FastAPI()
    app.mount("/tenants/{tenant}", Starlette(routes=[Route("/things/{thing_id}", thing)]))
    capture_telemetry.reconfigure(app=app)
    with TestClient(app) as test_client:
        for tenant in ("acme", "globex", "initech"):
            assert test_client.get(f"/tenants/{tenant}/things/{tenant}-1").status_code == 200
    template = "/tenants/{tenant}/things/{thing_id}"
    assert capture_telemetry.metric_value("http_requests_total", path=template) == 3
    text = capture_telemetry.prometheus_text()
    assert not any(name in text for name in ("acme", "globex", "initech"))


def test_excluded_urls_get_no_span_but_are_counted(
    client: TestClient, capture_telemetry: CapturedTelemetry
) -> None:
    """/metrics and /health* (the default ATOMS_OTEL_EXCLUDED_URLS) make no span; metrics still count."""
    assert client.get("/metrics").status_code == 200
    client.get("/health/live")
    assert server_spans(capture_telemetry) == []
    assert capture_telemetry.metric_value("http_requests_total", path="/metrics", status="200") == 1


def test_excluded_urls_setting_is_honoured(capture_telemetry: CapturedTelemetry) -> None:
    """configure(excluded_urls=...) replaces the default list; a trailing * is a prefix."""
    app = make_app()
    capture_telemetry.reconfigure(app=app, excluded_urls=["/items/*"])
    with TestClient(app) as test_client:
        test_client.get("/items/1")
        test_client.get("/metrics")
    assert [s.attributes["url.path"] for s in server_spans(capture_telemetry)] == ["/metrics"]


def test_active_connections_counts_requests_in_flight(capture_telemetry: CapturedTelemetry) -> None:
    """active_connections is 1 while a request is being served and 0 after it finished."""
    entered, release = threading.Event(), threading.Event()
    app = FastAPI()

    @app.get("/wait")
    def wait() -> dict[str, bool]:
        entered.set()
        return {"released": release.wait(10)}

    capture_telemetry.reconfigure(app=app)
    gauge = get_metrics_registry().active_connections
    with serve(app) as base_url:
        worker = threading.Thread(target=httpx.get, args=(f"{base_url}/wait",), kwargs={"timeout": 15})
        worker.start()
        assert entered.wait(10)
        during = capture_telemetry.metric_value("active_connections")
        release.set()
        worker.join(15)
    assert (during, gauge.value(), capture_telemetry.metric_value("active_connections")) == (1, 0, 0)


def test_response_time_headers_are_set(client: TestClient) -> None:
    """Server-Timing (app;dur=<ms>) and X-Response-Time (<ms>ms) report the time to the first byte."""
    response = client.get("/items/1")
    timing = re.fullmatch(r"app;dur=(\d+\.\d{3})", response.headers["server-timing"])
    response_time = re.fullmatch(r"(\d+\.\d{3})ms", response.headers["x-response-time"])
    assert timing and response_time and timing.group(1) == response_time.group(1)


# -- slow requests ------------------------------------------------------------------------------


def test_slow_requests_log_a_warning_count_and_publish_an_event(capture_telemetry: CapturedTelemetry) -> None:
    """Over ATOMS_OTEL_SLOW_REQUEST_MS: one WARNING "slow request" line, a counter, an event."""
    app = FastAPI()

    @app.get("/slow/{n}")
    async def slow(n: int) -> dict[str, int]:
        await asyncio.sleep(0.3)
        return {"n": n}

    @app.get("/fast")
    async def fast() -> dict[str, bool]:
        return {"fast": True}

    telemetry = capture_telemetry.reconfigure(app=app, slow_request_ms=200)
    events: list[Event] = []
    telemetry.events.subscribe("performance.", events.append)
    with TestClient(app) as test_client:
        test_client.get("/fast")
        test_client.get("/slow/1", headers={"X-Correlation-ID": "slow-1"})
    [line] = [x for x in capture_telemetry.log_lines if x["level"] == "WARNING"]
    assert "slow request" in line["message"]
    assert (line["route"], line["method"], line["correlation_id"], line["threshold_ms"]) == (
        "/slow/{n}",
        "GET",
        "slow-1",
        200.0,
    )
    assert line["duration_ms"] >= 200
    assert capture_telemetry.metric_value("http_slow_requests_total", method="GET", path="/slow/{n}") == 1
    [event] = events
    assert (event.kind, event.severity, event.correlation_id) == (
        "performance.slow_request",
        "warning",
        "slow-1",
    )
    assert set(event.data) == {"route", "method", "duration_ms", "threshold_ms"}
    assert event.trace_id is not None and len(event.trace_id) == 32


# -- unhandled exceptions ---------------------------------------------------------------------


def test_unhandled_exception_becomes_a_json_500_with_the_correlation_id(client: TestClient) -> None:
    """The body is JSON with the correlation id; the exception text never leaves the server."""
    response = client.get("/boom", headers={"X-Correlation-ID": "err-1"})
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"detail": "Internal Server Error", "correlation_id": "err-1"}
    assert response.headers["x-correlation-id"] == "err-1"
    assert "hunter2" not in response.text and "Traceback" not in response.text


def test_unhandled_exception_is_counted_and_recorded_on_the_span(
    client: TestClient, capture_telemetry: CapturedTelemetry
) -> None:
    """errors_total{error_type,source="http"}, a 500 in http_requests_total, and the span's exception."""
    client.get("/boom")
    assert capture_telemetry.metric_value("errors_total", error_type="ValueError", source="http") == 1
    assert capture_telemetry.metric_value("http_requests_total", path="/boom", status="500") == 1
    [span] = server_spans(capture_telemetry)
    assert span.status.status_code is StatusCode.ERROR
    assert (
        span.attributes["error.type"] == "ValueError" and span.attributes["http.response.status_code"] == 500
    )
    [event] = span.events
    assert event.name == "exception" and event.attributes["exception.type"] == "ValueError"


def test_unhandled_exception_is_logged_once_through_a_real_server(
    capture_telemetry: CapturedTelemetry,
) -> None:
    """Under uvicorn: one ERROR line with the correlation id and the structured exception, and no
    second traceback from the server."""
    app = make_app()
    capture_telemetry.reconfigure(app=app)
    with serve(app) as base_url:
        response = httpx.get(f"{base_url}/boom", headers={"X-Correlation-ID": "err-2"})
    assert response.status_code == 500 and response.json()["correlation_id"] == "err-2"
    errors = [x for x in capture_telemetry.log_lines if x["level"] == "ERROR"]
    assert len(errors) == 1, errors
    [line] = errors
    assert line["correlation_id"] == "err-2" and line["route"] == "/boom"
    assert line["exception"]["type"] == "ValueError" and "boom" in line["exception"]["stacktrace"]


def test_unhandled_exception_publishes_an_error_event(
    client: TestClient, capture_telemetry: CapturedTelemetry
) -> None:
    """Plugins (webhooks, dashboard) get error.unhandled with the agreed data keys."""
    events: list[Event] = []
    assert capture_telemetry.telemetry is not None
    capture_telemetry.telemetry.events.subscribe("error.", events.append)
    client.get("/boom", headers={"X-Correlation-ID": "err-3"})
    [event] = events
    assert (event.kind, event.severity, event.correlation_id) == ("error.unhandled", "error", "err-3")
    assert event.data == {"error_type": "ValueError", "method": "GET", "route": "/boom", "status_code": 500}
    [span] = server_spans(capture_telemetry)
    assert event.trace_id == format(span.context.trace_id, "032x")


def test_the_apps_own_500_handler_still_answers(capture_telemetry: CapturedTelemetry) -> None:
    """An app with its own Exception handler keeps its response; the error is still recorded."""
    app = make_app()

    @app.exception_handler(Exception)
    async def handler(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"mine": True}, status_code=503)

    capture_telemetry.reconfigure(app=app)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        response = test_client.get("/boom")
    assert (response.status_code, response.json()) == (503, {"mine": True})
    assert capture_telemetry.metric_value("errors_total", error_type="ValueError", source="http") == 1


def test_http_exceptions_are_not_unhandled_errors(
    client: TestClient, capture_telemetry: CapturedTelemetry
) -> None:
    """A 422 validation error is an ordinary response: no errors_total, no error status on the span."""
    assert client.get("/items/not-a-number").status_code == 422
    assert capture_telemetry.metric_value("errors_total", source="http") == 0
    [span] = server_spans(capture_telemetry)
    assert span.status.status_code is StatusCode.UNSET and "error.type" not in (span.attributes or {})


# -- pass-through -------------------------------------------------------------------------------


def test_streaming_responses_pass_through_unbuffered(capture_telemetry: CapturedTelemetry) -> None:
    """The first chunk reaches the client while the handler is still producing the second."""
    release = threading.Event()
    app = FastAPI()

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            yield b"first"
            await anyio.to_thread.run_sync(release.wait, 5)
            yield b"second"

        return StreamingResponse(chunks(), media_type="text/event-stream")

    capture_telemetry.reconfigure(app=app)
    with serve(app) as base_url, httpx.stream("GET", f"{base_url}/stream", timeout=10) as response:
        started = time.monotonic()
        pieces = response.iter_raw()
        first = next(pieces)
        waited = time.monotonic() - started
        release.set()
        rest = b"".join(pieces)
    assert (first, rest) == (b"first", b"second") and waited < 4
    assert capture_telemetry.metric_value("http_requests_total", path="/stream", status="200") == 1


def test_websocket_and_lifespan_pass_straight_through(capture_telemetry: CapturedTelemetry) -> None:
    """The app's lifespan runs and a WebSocket echoes, with no HTTP span or request count."""
    started: list[bool] = []

    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        started.append(True)
        yield

    app = FastAPI(lifespan=asynccontextmanager(lifespan))

    @app.websocket("/ws")
    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text(await websocket.receive_text())
        await websocket.close()

    capture_telemetry.reconfigure(app=app)
    with TestClient(app) as test_client, test_client.websocket_connect("/ws") as ws:
        ws.send_text("ping")
        assert ws.receive_text() == "ping"
    assert started == [True]
    assert capture_telemetry.metric_value("http_requests_total") == 0
    assert [s for s in server_spans(capture_telemetry) if s.attributes.get("http.request.method")] == []


# -- the classes on their own, stacked, and before configure() -------------------------------------


@pytest.mark.parametrize(
    "middleware",
    [
        ContextPropagationMiddleware,
        RequestTrackingMiddleware,
        PerformanceTrackingMiddleware,
        ErrorTrackingMiddleware,
    ],
)
def test_each_middleware_works_alone_without_arguments(
    capture_telemetry: CapturedTelemetry, middleware: type[TelemetryMiddleware]
) -> None:
    """app.add_middleware(X) alone: the request is served and carries a correlation id."""
    app = make_app(telemetry={"tracing": False, "metrics": False, "logs": False})
    app.add_middleware(middleware)
    with TestClient(app) as test_client:
        response = test_client.get("/items/7", headers={"X-Correlation-ID": "alone-1"})
    assert response.json() == {"item_id": 7} and response.headers["x-correlation-id"] == "alone-1"
    line = next(x for x in capture_telemetry.log_lines if x["message"] == "reading item")
    assert line["correlation_id"] == "alone-1"


def test_request_tracking_alone_counts_and_times(capture_telemetry: CapturedTelemetry) -> None:
    """RequestTrackingMiddleware by itself records the span, the request metrics and the headers."""
    app = make_app(telemetry={"tracing": False, "metrics": False, "logs": False})
    app.add_middleware(RequestTrackingMiddleware)
    with TestClient(app) as test_client:
        response = test_client.get("/items/7")
    assert "server-timing" in response.headers
    assert [s.name for s in server_spans(capture_telemetry)] == ["GET /items/{item_id}"]
    assert capture_telemetry.metric_value("http_requests_total", path="/items/{item_id}") == 1


def test_error_tracking_alone_answers_json_500(capture_telemetry: CapturedTelemetry) -> None:
    """ErrorTrackingMiddleware by itself turns an exception into the JSON 500 and counts it."""
    app = make_app(telemetry={"tracing": False, "metrics": False, "logs": False})
    app.add_middleware(ErrorTrackingMiddleware)
    with TestClient(app) as test_client:
        response = test_client.get("/boom", headers={"X-Correlation-ID": "alone-err"})
    assert response.json() == {"detail": "Internal Server Error", "correlation_id": "alone-err"}
    assert capture_telemetry.metric_value("errors_total", error_type="ValueError", source="http") == 1


def test_performance_tracking_alone_flags_slow_requests(capture_telemetry: CapturedTelemetry) -> None:
    """PerformanceTrackingMiddleware by itself logs and counts requests over the threshold."""
    app = make_app(telemetry={"tracing": False, "metrics": False, "logs": False})
    app.add_middleware(PerformanceTrackingMiddleware)
    capture_telemetry.reconfigure(slow_request_ms=0)
    with TestClient(app) as test_client:
        test_client.get("/items/7")
    assert [x["route"] for x in capture_telemetry.log_lines if x["level"] == "WARNING"] == [
        "/items/{item_id}"
    ]
    assert capture_telemetry.metric_value("http_slow_requests_total", path="/items/{item_id}") == 1


def test_stacked_middlewares_and_configure_record_each_request_once(
    capture_telemetry: CapturedTelemetry,
) -> None:
    """The seed's add_middleware(RequestTracking, ErrorTracking) plus configure(app=): one span, one count."""
    app = make_app()
    app.add_middleware(RequestTrackingMiddleware)
    app.add_middleware(ErrorTrackingMiddleware)
    capture_telemetry.reconfigure(app=app)
    with TestClient(app) as test_client:
        test_client.get("/items/1")
        test_client.get("/boom")
    assert sorted(s.name for s in server_spans(capture_telemetry)) == ["GET /boom", "GET /items/{item_id}"]
    assert capture_telemetry.metric_value("http_requests_total") == 2
    assert capture_telemetry.metric_value("errors_total", source="http") == 1
    assert len([x for x in capture_telemetry.log_lines if x["level"] == "ERROR"]) == 1


def test_fastapis_native_span_is_enriched_not_duplicated(capture_telemetry: CapturedTelemetry) -> None:
    """Middleware added by hand to an app whose native telemetry is on: still one server span."""
    app = make_app()  # FastAPI's native telemetry is on once configure() set global providers
    app.add_middleware(RequestTrackingMiddleware)
    with TestClient(app) as test_client:
        test_client.get("/items/1", headers={"X-Correlation-ID": "native-1"})
    [span] = server_spans(capture_telemetry)
    assert span.instrumentation_scope is not None and span.instrumentation_scope.name == "fastapi"
    assert span.name == "GET /items/{item_id}" and span.attributes["atoms.correlation_id"] == "native-1"
    assert capture_telemetry.metric_value("http_requests_total", path="/items/{item_id}") == 1


def test_middleware_works_before_configure() -> None:
    """Without configure() the app is served with correlation ids and timings, on the defaults."""
    atoms_otel.shutdown()
    app = make_app(telemetry={"tracing": False, "metrics": False, "logs": False})
    app.add_middleware(TelemetryMiddleware)
    with TestClient(app) as test_client:
        ok = test_client.get("/items/1", headers={"X-Correlation-ID": "early"})
        failed = test_client.get("/boom")
    assert ok.headers["x-correlation-id"] == "early" and "server-timing" in ok.headers
    assert failed.status_code == 500 and failed.json()["detail"] == "Internal Server Error"


@pytest.mark.parametrize(
    ("part", "component"),
    [
        ("read_headers", "http middleware setup"),
        ("server_span", "http server span"),
        ("with_headers", "http response headers"),
        ("finish_tracking", "http middleware finish"),
    ],
)
def test_an_internal_failure_does_not_break_the_request(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, part: str, component: str
) -> None:
    """If any part of the instrumentation fails, the response is unchanged and the failure counted."""

    def broken(*args: Any) -> None:
        raise RuntimeError("telemetry bug")

    _guard.raise_internal_errors = False
    monkeypatch.setattr(_engine, part, broken)
    response = client.get("/items/5")
    assert (response.status_code, response.json()) == (200, {"item_id": 5})
    assert _guard.internal_error_counts()[component] == 1


def test_json_500_body_is_valid_json_for_any_correlation_id(client: TestClient) -> None:
    """Every accepted correlation id character is safe inside the JSON body."""
    cid = "a-Z_0.9:" * 16
    body = client.get("/boom", headers={"X-Correlation-ID": cid}).content
    assert json.loads(body)["correlation_id"] == cid


def test_plain_starlette_apps_are_labelled_by_template(capture_telemetry: CapturedTelemetry) -> None:
    """On a Starlette app (no FastAPI router) the template comes from the matched route or mount."""

    async def user(request: Request) -> PlainTextResponse:
        return PlainTextResponse(request.path_params["user_id"])

    async def raw_asgi(scope: Any, receive: Any, send: Any) -> None:
        await PlainTextResponse("file")(scope, receive, send)

    app = Starlette(routes=[Route("/users/{user_id}", user), Mount("/static", app=raw_asgi)])
    app.add_middleware(TelemetryMiddleware)
    with TestClient(app) as test_client:
        test_client.get("/users/1")
        test_client.get("/users/2")
        test_client.get("/static/css/site.css")
    assert capture_telemetry.metric_value("http_requests_total", path="/users/{user_id}") == 2
    assert capture_telemetry.metric_value("http_requests_total", path="/static/{path}") == 1
    assert "site.css" not in capture_telemetry.prometheus_text()


def test_disabled_telemetry_still_serves_requests(capture_telemetry: CapturedTelemetry) -> None:
    """With OTEL_SDK_DISABLED the app behaves the same: correlation ids, JSON 500s, no spans."""
    app = make_app()
    capture_telemetry.reconfigure(app=app, disabled=True)
    with TestClient(app) as test_client:
        ok = test_client.get("/items/1", headers={"X-Correlation-ID": "off-1"})
        failed = test_client.get("/boom")
    assert (ok.status_code, ok.headers["x-correlation-id"]) == (200, "off-1")
    assert failed.status_code == 500 and failed.json()["detail"] == "Internal Server Error"
    assert server_spans(capture_telemetry) == []


def test_the_server_span_carries_the_recommended_http_attributes(
    capture_telemetry: CapturedTelemetry,
) -> None:
    """Semantic conventions on a real uvicorn request: protocol version, query, client, server
    address and port from Host, user agent (bounded), besides method, route and status."""
    app = FastAPI()

    @app.get("/items/{item_id}")
    def item(item_id: int) -> dict[str, int]:
        return {"item_id": item_id}

    capture_telemetry.reconfigure(app=app)
    with serve(app) as url:
        httpx.get(f"{url}/items/4?sort=asc", headers={"User-Agent": "probe/1.0 " + "x" * 600})
    span = next(s for s in capture_telemetry.spans if s.name == "GET /items/{item_id}")
    attributes = dict(span.attributes or {})
    port = int(url.rsplit(":", 1)[1])
    assert attributes["network.protocol.version"] == "1.1"
    assert attributes["url.query"] == "sort=asc" and attributes["url.path"] == "/items/4"
    assert (attributes["server.address"], attributes["server.port"]) == ("127.0.0.1", port)
    assert attributes["client.address"] == "127.0.0.1"
    agent = attributes["user_agent.original"]
    assert isinstance(agent, str) and agent.startswith("probe/1.0") and len(agent) == 512


def test_methods_are_normalised_by_util_http_and_bounded(
    client: TestClient, capture_telemetry: CapturedTelemetry
) -> None:
    """util-http's sanitize_method decides (HTTP clients upper-case the method, so a lower-case one
    is checked directly): 200 invented methods stay _OTHER and the remembered set stays bounded."""
    assert state_module.request_method("get") == "GET" and state_module.request_method("QUERY") == "QUERY"
    for number in range(200):
        client.request(f"BREW{number}", "/items/1")
    assert capture_telemetry.metric_value("http_requests_total", method="_OTHER") == 200
    assert len(state_module._METHODS) <= state_module._MAX_METHODS
    assert state_module.request_method("BREW999") == "_OTHER"
