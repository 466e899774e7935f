"""One trace tree however the middleware is installed: caller → one server span → the handler's spans,
with the handler's log lines carrying ids from inside that tree (spans and logs from a real collector)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from opentelemetry import trace

import atoms_otel
from atoms_otel import (
    AdvancedOptions,
    ContextPropagationMiddleware,
    ErrorTrackingMiddleware,
    PerformanceTrackingMiddleware,
    RequestTrackingMiddleware,
    get_logger,
)
from tests.support.collector import Collector

CALLER_TRACE = "0af7651916cd43dd8448eb211c80319c"
CALLER_SPAN = "b7ad6b7169203331"
TRACEPARENT = f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"
SERVER = 2  # OTLP SpanKind SERVER

WIRINGS: dict[str, list[type[Any]] | None] = {
    "RequestTracking": [RequestTrackingMiddleware],
    "ErrorTracking": [ErrorTrackingMiddleware],
    "PerformanceTracking": [PerformanceTrackingMiddleware],
    "ContextPropagation": [ContextPropagationMiddleware],
    "all four": [
        RequestTrackingMiddleware,
        ErrorTrackingMiddleware,
        PerformanceTrackingMiddleware,
        ContextPropagationMiddleware,
    ],
    "configure(app=)": None,
}


@pytest.fixture(autouse=True)
def _shutdown_after() -> Iterator[None]:
    yield
    atoms_otel.shutdown()


def _app(collector: Collector, wiring: list[type[Any]] | None, marker: str) -> FastAPI:
    app = FastAPI()

    @app.get("/work")
    def work() -> dict[str, str]:
        with trace.get_tracer("handler").start_as_current_span(f"handler {marker}"):
            get_logger("handler").info(f"inside {marker}")
        return {"ok": marker}

    options = {
        "service_name": "tree",
        "otlp_endpoint": collector.http_endpoint,
        "advanced": AdvancedOptions(log_stream=io.StringIO(), synchronous_export=True),
    }
    if wiring is None:
        atoms_otel.configure(app=app, **options)
    else:
        atoms_otel.configure(**options)
        for middleware in wiring:
            app.add_middleware(middleware)
    return app


def _ancestors(span: dict[str, Any], by_id: dict[str, dict[str, Any]]) -> list[str]:
    chain = []
    while span["parent_span_id"] in by_id:
        span = by_id[span["parent_span_id"]]
        chain.append(span["span_id"])
    return [*chain, span["parent_span_id"]]


@pytest.mark.real
@pytest.mark.parametrize("traceparent", [True, False], ids=["traceparent", "no-traceparent"])
@pytest.mark.parametrize("wiring", list(WIRINGS), ids=list(WIRINGS))
def test_one_tree_whatever_the_wiring(collector: Collector, wiring: str, traceparent: bool) -> None:
    """Exactly one server span, a child of the caller's span when one came in; the handler's span
    descends from it, and the handler's log line carries that trace and a span of that tree."""
    marker = f"{wiring}-{traceparent}".replace(" ", "_")
    app = _app(collector, WIRINGS[wiring], marker)
    headers = {"traceparent": TRACEPARENT} if traceparent else {}
    assert TestClient(app).get("/work", headers=headers).json() == {"ok": marker}
    atoms_otel.shutdown()

    handler = collector.wait_for(lambda c: [s for s in c.spans() if s["name"] == f"handler {marker}"])[0]
    log = collector.wait_for(lambda c: [r for r in c.logs() if r["body"] == f"inside {marker}"])[0]
    in_trace = [s for s in collector.spans() if s["trace_id"] == handler["trace_id"]]
    servers = [s for s in in_trace if s["kind"] == SERVER]
    assert len(servers) == 1, [s["name"] for s in servers]
    server = servers[0]
    by_id = {s["span_id"]: s for s in in_trace}
    if traceparent:
        assert (server["trace_id"], server["parent_span_id"]) == (CALLER_TRACE, CALLER_SPAN)
    else:
        assert server["parent_span_id"] in ("", "0" * 16)
    assert server["span_id"] in _ancestors(handler, by_id)
    assert log["trace_id"] == handler["trace_id"] and log["span_id"] == handler["span_id"]
