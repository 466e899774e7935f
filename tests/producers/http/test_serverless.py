"""Serverless mode: a request's telemetry is at the collector when its response arrives."""

from __future__ import annotations

import io
import socket
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import StreamingResponse
from opentelemetry import trace

import atoms_otel
from atoms_otel import AdvancedOptions, Counter, MetricsOptions, ServerlessFlushMiddleware, get_logger
from atoms_otel.base import guard as _guard
from tests.support.collector import Collector
from tests.support.net import free_port
from tests.support.server import serve

pytestmark = pytest.mark.real

# Without a flush nothing would leave the batch processors or the metric reader for a minute.
SLOW_BATCHES = {"OTEL_BSP_SCHEDULE_DELAY": "60000", "OTEL_BLRP_SCHEDULE_DELAY": "60000"}
ARRIVAL_S = 1.5  # the sink writes shortly after the collector accepted the export

work_done = Counter("serverless.work.done", "Work items done in the serverless tests")


@pytest.fixture(autouse=True)
def _slow_batches_and_shutdown(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in SLOW_BATCHES.items():
        monkeypatch.setenv(name, value)
    for name in ("VERCEL", "AWS_LAMBDA_FUNCTION_NAME", "ATOMS_OTEL_SERVERLESS"):
        monkeypatch.delenv(name, raising=False)
    yield
    atoms_otel.shutdown()


@pytest.fixture
def otlp(collector: Collector) -> Iterator[Collector]:
    """The real collector; our pipeline is shut down before the collector stops."""
    yield collector
    atoms_otel.shutdown()


def _app() -> FastAPI:
    app = FastAPI()
    log = get_logger("serverless.app")

    @app.get("/work")
    async def work() -> dict[str, str]:
        with trace.get_tracer("serverless.app").start_as_current_span("do-work"):
            log.info("working on it")
            work_done.inc()
        return {"status": "done"}

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            for i in range(5):
                yield f"chunk-{i};".encode()

        return StreamingResponse(chunks(), media_type="text/plain")

    return app


def _configure(app: FastAPI, endpoint: str, *, shutdown_timeout_s: float = 5.0, **options: Any) -> None:
    atoms_otel.configure(
        app=app,
        service_name="serverless-svc",
        otlp_endpoint=endpoint,
        metrics=MetricsOptions(export_interval_ms=60_000),
        advanced=AdvancedOptions(log_stream=io.StringIO(), shutdown_timeout_s=shutdown_timeout_s),
        **options,
    )


def _handler_signals(collector: Collector) -> dict[str, bool]:
    return {
        "handler span": any(s["name"] == "do-work" for s in collector.spans()),
        "log": any(r["body"] == "working on it" for r in collector.logs()),
        "metric": any(m["name"] == "serverless.work.done" for m in collector.metrics()),
    }


def _server_span(collector: Collector) -> bool:
    return any(s["attributes"].get("http.route") == "/work" for s in collector.spans())


def test_the_handlers_span_log_and_metric_are_at_the_collector_when_the_response_arrives(
    otlp: Collector,
) -> None:
    """Serverless mode exports what the request handler recorded before the response ends."""
    app = _app()
    _configure(app, otlp.http_endpoint, serverless=True)
    with serve(app) as url:
        response = httpx.get(f"{url}/work", timeout=10)
        assert response.json() == {"status": "done"}
        assert otlp.wait_for(lambda c: all(_handler_signals(c).values()), timeout=ARRIVAL_S)


def test_the_requests_server_span_is_at_the_collector_when_the_response_arrives(otlp: Collector) -> None:
    """The HTTP server span, which ends only after the route returned, is exported in time too."""
    app = _app()
    _configure(app, otlp.http_endpoint, serverless=True)
    with serve(app) as url:
        assert httpx.get(f"{url}/work", timeout=10).status_code == 200
        assert otlp.wait_for(_server_span, timeout=ARRIVAL_S)


def test_without_serverless_mode_the_same_request_waits_for_the_batch(otlp: Collector) -> None:
    """The control: with batching alone, none of the request's signals arrive that soon."""
    app = _app()
    _configure(app, otlp.http_endpoint, serverless=False)
    with serve(app) as url:
        assert httpx.get(f"{url}/work", timeout=10).status_code == 200
        time.sleep(ARRIVAL_S)
        assert not any(_handler_signals(otlp).values()) and not _server_span(otlp)


def test_a_streamed_response_arrives_whole(otlp: Collector) -> None:
    """Chunks of a streaming response all reach the client, the last one after the flush."""
    app = _app()
    _configure(app, otlp.http_endpoint, serverless=True)
    with serve(app) as url:
        response = httpx.get(f"{url}/stream", timeout=10)
    assert response.text == "".join(f"chunk-{i};" for i in range(5))


@pytest.mark.parametrize("platform", ["VERCEL", "AWS_LAMBDA_FUNCTION_NAME"])
def test_configure_installs_the_flush_on_serverless_platforms(
    monkeypatch: pytest.MonkeyPatch, platform: str
) -> None:
    """On Vercel or Lambda, configure(app=app) adds the flush middleware without being asked."""
    monkeypatch.setenv(platform, "1")
    app = FastAPI()
    atoms_otel.configure(app=app, advanced=AdvancedOptions(log_stream=io.StringIO()))
    assert ServerlessFlushMiddleware in [m.cls for m in app.user_middleware]


def test_configure_does_not_install_the_flush_elsewhere() -> None:
    """Off serverless platforms responses are never held back for a flush."""
    app = FastAPI()
    atoms_otel.configure(app=app, advanced=AdvancedOptions(log_stream=io.StringIO()))
    assert ServerlessFlushMiddleware not in [m.cls for m in app.user_middleware]


def test_configure_after_the_app_started_wraps_the_running_stack() -> None:
    """An app already serving cannot take new middleware: the flush wraps its built stack instead."""
    from fastapi.testclient import TestClient

    app = _app()
    with TestClient(app) as client:
        assert client.get("/work").status_code == 200
        atoms_otel.configure(app=app, serverless=True, advanced=AdvancedOptions(log_stream=io.StringIO()))
        assert isinstance(app.middleware_stack, ServerlessFlushMiddleware)
        assert client.get("/work").json() == {"status": "done"}


@pytest.fixture
def silent_collector() -> Iterator[str]:
    """An endpoint that accepts connections and never answers (a collector that hangs)."""
    port = free_port()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", port))
        server.listen(64)
        yield f"http://127.0.0.1:{port}"


def test_a_hanging_collector_delays_a_response_by_the_deadline_at_most(silent_collector: str) -> None:
    """The flush gives up at its deadline: the response arrives intact, one warning is logged."""
    app = _app()
    app.add_middleware(ServerlessFlushMiddleware, flush_timeout_s=0.5)
    _configure(app, silent_collector, serverless=False, shutdown_timeout_s=1.0)
    with serve(app) as url:
        started = time.perf_counter()
        response = httpx.get(f"{url}/work", timeout=10)
        elapsed = time.perf_counter() - started
    assert response.json() == {"status": "done"}
    assert 0.4 < elapsed < 1.5
    assert _guard.internal_error_counts()["serverless flush"] == 1


def test_a_failing_flush_never_reaches_the_app(otlp: Collector, monkeypatch: pytest.MonkeyPatch) -> None:
    """force_flush raising is contained and counted; the client still gets its response."""
    _guard.raise_internal_errors = False
    app = _app()
    _configure(app, otlp.http_endpoint, serverless=True)
    telemetry = atoms_otel.get_telemetry()
    assert telemetry is not None

    def broken(timeout_s: float | None = None) -> bool:
        raise RuntimeError("exporter exploded")

    monkeypatch.setattr(telemetry, "force_flush", broken)
    with serve(app) as url:
        response = httpx.get(f"{url}/work", timeout=10)
    assert response.json() == {"status": "done"}
    assert _guard.internal_error_counts()["serverless flush"] == 1


async def test_the_apps_exception_is_reraised_unchanged_after_its_response_completes() -> None:
    """An exception raised after the app sent its response propagates as is; the response completes."""
    atoms_otel.configure(advanced=AdvancedOptions(log_stream=io.StringIO()))
    error = LookupError("the app's own error")
    sent: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 500, "headers": []})
        await send({"type": "http.response.body", "body": b"failed"})
        raise error

    async def receive() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    middleware = ServerlessFlushMiddleware(app)
    with pytest.raises(LookupError) as raised:
        await middleware({"type": "http", "method": "GET", "path": "/"}, receive, send)
    assert raised.value is error
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    assert sent[-1]["body"] == b"failed"


async def test_lifespan_messages_pass_straight_through() -> None:
    """Non-HTTP scopes reach the app untouched."""
    seen: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["type"])
        await send({"type": "lifespan.startup.complete"})

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def receive() -> dict[str, Any]:
        return {"type": "lifespan.startup"}

    await ServerlessFlushMiddleware(app)({"type": "lifespan"}, receive, send)
    assert seen == ["lifespan"] and sent == [{"type": "lifespan.startup.complete"}]
