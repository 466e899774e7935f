"""The ``path`` label under a real uvicorn: redirects and unmatched requests are ``unmatched``."""

from __future__ import annotations

import re

import httpx
import pytest
from fastapi import FastAPI, HTTPException
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from atoms_otel import record_cache_operation, track_database_operation
from atoms_otel.testing import CapturedTelemetry
from tests.support.server import serve

pytestmark = pytest.mark.real


def _raw_files(scope: object, receive: object, send: object) -> object:
    """A mounted ASGI app without a router of its own (like StaticFiles): it serves the whole mount."""

    async def app() -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})  # type: ignore[operator]
        await send({"type": "http.response.body", "body": b"file"})  # type: ignore[operator]

    return app()


def _app() -> FastAPI:
    app = FastAPI()

    @app.get("/items/")
    def items() -> list[int]:
        return []

    @app.get("/things/{thing_id}")
    def thing(thing_id: int) -> None:
        raise HTTPException(404)

    sub = FastAPI()

    @sub.get("/orders/")
    def orders() -> list[int]:
        return []

    app.mount("/sub", sub)
    app.mount("/inner", Starlette(routes=[Route("/", lambda r: PlainTextResponse("x"))]))
    app.mount("/files", _raw_files)  # type: ignore[arg-type]
    return app


def _requests(text: str) -> dict[tuple[str, str], float]:
    found = re.findall(
        r'^http_requests_total\{method="GET",path="([^"]*)",status="(\d+)"\} (\S+)$', text, re.M
    )
    return {(path, status): float(value) for path, status, value in found}


def test_redirects_and_unmatched_requests_are_labelled_unmatched(
    capture_telemetry: CapturedTelemetry,
) -> None:
    """Trailing-slash 307s (top level, sub-app, mount) and 404s of a sub-app's router are unmatched."""
    app = _app()
    telemetry = capture_telemetry.reconfigure(app=app)
    paths = ["/items", "/sub/orders", "/inner", "/nope", "/sub/nope", "/inner/nope"]
    paths += ["/items/", "/sub/orders/", "/inner/", "/things/7", "/files/a.css"]
    with serve(app) as url, httpx.Client(base_url=url, follow_redirects=False) as client:
        statuses = [client.get(path).status_code for path in paths]
    assert statuses == [307, 307, 307, 404, 404, 404, 200, 200, 200, 404, 200]
    assert _requests(telemetry.metrics_text().decode()) == {
        ("unmatched", "307"): 3,
        ("unmatched", "404"): 3,
        ("/items/", "200"): 1,
        ("/sub/orders/", "200"): 1,
        ("/inner/", "200"): 1,
        ("/things/{thing_id}", "404"): 1,  # a route that answered 404 keeps its template
        ("/files/{path}", "200"): 1,  # a mounted app without a router serves its whole mount
    }


def test_no_label_value_is_an_empty_string(capture_telemetry: CapturedTelemetry) -> None:
    """A database call without a table is table="_none"; a cache without a name is cache="default"."""
    telemetry = capture_telemetry.reconfigure()

    @track_database_operation("select")
    def count_rows() -> int:
        return 1

    count_rows()
    record_cache_operation("get", True, cache="")
    text = telemetry.metrics_text().decode()
    assert '=""' not in text
    assert 'database_queries_total{operation="select",status="success",table="_none"} 1.0' in text
    assert 'cache_operations_total{cache="default",operation="get",result="hit"} 1.0' in text
