"""Context in and out: outbound httpx calls carry the trace, baggage and correlation id to the next
service (two real uvicorn services); the app's request_context hook names the user and session."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient
from opentelemetry import propagate, trace
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from starlette.types import ASGIApp, Receive, Scope, Send

import atoms_otel
from atoms_otel import AdvancedOptions, ConfigurationError, TelemetryMiddleware, get_logger
from atoms_otel.base import guard as _guard
from atoms_otel.testing import CapturedTelemetry
from tests.support.server import serve


@pytest.fixture
def outbound() -> Iterator[None]:
    """instrument_httpx() for one test; the httpx patch and the global propagators restored after."""
    textmap = propagate.get_global_textmap()
    atoms_otel.instrument_httpx()
    try:
        yield
    finally:
        HTTPXClientInstrumentor().uninstrument()
        propagate.set_global_textmap(textmap)


def _downstream() -> FastAPI:
    """Service B: echoes the propagation headers it received and logs one line."""
    app = FastAPI()

    @app.get("/echo")
    def echo(request: Request) -> dict[str, str | None]:
        get_logger("b").info("downstream work")
        return {name: request.headers.get(name) for name in ("traceparent", "baggage", "x-correlation-id")}

    app.add_middleware(TelemetryMiddleware)
    return app


def _upstream(downstream_url: str) -> FastAPI:
    """Service A: calls B with an ordinary httpx client while handling its own request."""
    app = FastAPI()

    @app.get("/call")
    async def call() -> Any:
        async with httpx.AsyncClient() as client:
            return (await client.get(f"{downstream_url}/echo")).json()

    return app


@pytest.mark.real
def test_outbound_httpx_calls_carry_trace_baggage_and_correlation_id(
    capture_telemetry: CapturedTelemetry, outbound: None
) -> None:
    """B sees A's trace (its server span is a child of A's client span), the caller's baggage and
    the request's X-Correlation-ID; B's log line carries that correlation id."""
    b_app = _downstream()
    with serve(b_app) as b_url:
        a_app = _upstream(b_url)
        capture_telemetry.reconfigure(app=a_app)
        with serve(a_app) as a_url:
            seen = httpx.get(
                f"{a_url}/call", headers={"X-Correlation-ID": "corr-out-1", "baggage": "tenant=acme"}
            ).json()
    assert seen["x-correlation-id"] == "corr-out-1" and seen["baggage"] == "tenant=acme"
    client = next(s for s in capture_telemetry.spans if s.kind is trace.SpanKind.CLIENT)
    servers = {s.name: s for s in capture_telemetry.spans if s.kind is trace.SpanKind.SERVER}
    a_server, b_server = servers["GET /call"], servers["GET /echo"]
    assert seen["traceparent"].split("-")[1] == format(a_server.context.trace_id, "032x")
    assert b_server.context.trace_id == a_server.context.trace_id
    assert b_server.parent is not None and b_server.parent.span_id == client.context.span_id
    assert client.parent is not None and client.parent.span_id == a_server.context.span_id
    line = next(line for line in capture_telemetry.log_lines if line["message"] == "downstream work")
    assert line["correlation_id"] == "corr-out-1"


@pytest.mark.real
def test_without_a_request_no_correlation_header_is_invented(
    capture_telemetry: CapturedTelemetry, outbound: None
) -> None:
    """Outside a request there is no correlation id to send, so none is sent."""
    with serve(_downstream()) as b_url:
        seen = httpx.get(f"{b_url}/echo").json()
    assert seen["x-correlation-id"] is None


def _identity_app() -> FastAPI:
    app = FastAPI()

    @app.get("/me")
    def me() -> dict[str, str]:
        get_logger("app").info("who am i")
        return {"ok": "yes"}

    return app


def test_request_context_names_user_and_session_on_logs_and_spans(
    capture_telemetry: CapturedTelemetry,
) -> None:
    """What the hook returns before the handler runs is on every log line and on the server span."""

    def from_verified_session(scope: Any) -> dict[str, str] | None:
        cookie = dict(scope["headers"]).get(b"cookie", b"").decode()
        return {"user_id": "u-42", "session_id": "s-9", "tenant": "acme"} if cookie == "sid=valid" else None

    app = _identity_app()
    capture_telemetry.reconfigure(app=app, request_context=from_verified_session)
    client = TestClient(app)
    client.get("/me", headers={"cookie": "sid=valid"})
    client.get("/me", headers={"cookie": "sid=forged"})
    lines = [line for line in capture_telemetry.log_lines if line["message"] == "who am i"]
    assert (lines[0]["user_id"], lines[0]["session_id"], lines[0]["tenant"]) == ("u-42", "s-9", "acme")
    assert "user_id" not in lines[1] and "session_id" not in lines[1]
    spans = [s for s in capture_telemetry.spans if s.name == "GET /me"]
    attributes = spans[0].attributes or {}
    assert (attributes["user.id"], attributes["session.id"]) == ("u-42", "s-9")
    assert "user.id" not in (spans[1].attributes or {})


class _InnerAuth:
    """An app's own authentication, running inside atoms_otel's middleware: sets scope["user"]."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope["user"] = "inner-user"
        await self.app(scope, receive, send)


def test_identity_set_by_the_apps_own_auth_reaches_the_server_span(
    capture_telemetry: CapturedTelemetry,
) -> None:
    """Nothing known before the handler: asked again at response start, stamped on the server span."""
    app = _identity_app()
    app.add_middleware(_InnerAuth)
    capture_telemetry.reconfigure(
        app=app, request_context=lambda scope: {"user_id": scope["user"]} if "user" in scope else None
    )
    TestClient(app).get("/me")
    span = next(s for s in capture_telemetry.spans if s.name == "GET /me")
    assert (span.attributes or {})["user.id"] == "inner-user"


def test_a_failing_hook_is_contained_and_a_non_callable_fails_configure(
    capture_telemetry: CapturedTelemetry,
) -> None:
    """A hook that raises costs the request its identity only; configure() refuses a non-callable."""
    _guard.raise_internal_errors = False

    def broken(scope: Any) -> None:
        raise RuntimeError("auth backend down")

    app = _identity_app()
    capture_telemetry.reconfigure(app=app, request_context=broken)
    assert TestClient(app).get("/me").json() == {"ok": "yes"}
    assert _guard.internal_error_counts()["request_context hook"] >= 1
    with pytest.raises(ConfigurationError, match="request_context"):
        atoms_otel.configure(request_context="user_id", advanced=AdvancedOptions(log_stream=io.StringIO()))  # type: ignore[arg-type]
