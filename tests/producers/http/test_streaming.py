"""Streaming responses under a real uvicorn: judged slow by their time to first byte, not their length."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import StreamingResponse

from atoms_otel.testing import CapturedTelemetry
from tests.producers.test_mcp import build_server, mount
from tests.support.server import serve

pytestmark = pytest.mark.real

SLOW_MS = 300


def _slow_lines(capture: CapturedTelemetry) -> list[str]:
    return [str(x.get("route")) for x in capture.log_lines if "slow request" in str(x.get("message"))]


def _wait_until_recorded(capture: CapturedTelemetry, path: str, count: int) -> None:
    deadline = time.monotonic() + 10
    while capture.metric_value("http_request_duration_seconds", path=path) < count:
        assert time.monotonic() < deadline, f"{path} was not recorded"
        time.sleep(0.05)


def _streaming_app() -> FastAPI:
    app = FastAPI()

    async def chunks(first_after: float, then: int) -> AsyncIterator[bytes]:
        await asyncio.sleep(first_after)
        yield b"first\n"
        for _ in range(then):
            await asyncio.sleep(0.25)
            yield b"more\n"

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        return StreamingResponse(chunks(0.0, 3))  # open ~0.75 s, first byte at once

    @app.get("/late-stream")
    async def late_stream() -> StreamingResponse:
        return StreamingResponse(chunks(0.5, 0))  # the first byte itself is slow

    @app.get("/events")
    async def events() -> StreamingResponse:
        async def sse() -> AsyncIterator[bytes]:
            await asyncio.sleep(0.6)  # an idle event stream: headers first, events later
            yield b"data: tick\n\n"

        return StreamingResponse(sse(), media_type="text/event-stream")

    @app.get("/slow")
    async def slow() -> dict[str, bool]:
        await asyncio.sleep(0.5)
        return {"slow": True}

    return app


def test_streams_are_judged_by_their_first_byte(capture_telemetry: CapturedTelemetry) -> None:
    """A long stream with a prompt first byte is not slow; a late first byte or a slow response is."""
    app = _streaming_app()
    capture_telemetry.reconfigure(app=app, slow_request_ms=SLOW_MS)
    with serve(app) as url, httpx.Client(base_url=url, timeout=10) as client:
        for path in ("/stream", "/late-stream", "/events", "/slow"):
            assert client.get(path).status_code == 200
        for path in ("/stream", "/late-stream", "/events", "/slow"):
            _wait_until_recorded(capture_telemetry, path, 1)
    assert sorted(_slow_lines(capture_telemetry)) == ["/late-stream", "/slow"]
    assert capture_telemetry.histogram_sum("http_request_duration_seconds", path="/stream") >= 0.7  # total
    span = capture_telemetry.span("GET /stream")
    assert span.attributes is not None
    assert float(str(span.attributes["atoms_otel.http.time_to_first_byte_ms"])) < SLOW_MS


@pytest.fixture
def mcp_url(capture_telemetry: CapturedTelemetry) -> Iterator[str]:
    app = mount(build_server())
    capture_telemetry.reconfigure(app=app, slow_request_ms=SLOW_MS)
    with serve(app) as url:
        yield url + "/mcp/"


def test_an_open_mcp_get_stream_is_not_a_slow_request(
    mcp_url: str, capture_telemetry: CapturedTelemetry
) -> None:
    """A session's GET event stream held open 1.2 s (protocol 2025-11-25) is not flagged slow."""
    headers = {"accept": "application/json, text/event-stream", "content-type": "application/json"}
    init = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "raw", "version": "1"},
        },
    }
    with httpx.Client(timeout=10) as client:
        answer = client.post(mcp_url, json=init, headers=headers)
        assert answer.status_code == 200, answer.text
        session = {"mcp-session-id": answer.headers["mcp-session-id"], "mcp-protocol-version": "2025-11-25"}
        note = {"jsonrpc": "2.0", "method": "notifications/initialized"}
        assert client.post(mcp_url, json=note, headers={**headers, **session}).status_code == 202
        with client.stream("GET", mcp_url, headers={"accept": "text/event-stream", **session}) as stream:
            assert stream.status_code == 200
            assert stream.headers["content-type"].startswith("text/event-stream")
            time.sleep(1.2)
        client.delete(mcp_url, headers=session)
    deadline = time.monotonic() + 10
    while not [
        s for s in capture_telemetry.spans if s.name == "GET /mcp" or str(s.name).startswith("GET /mcp")
    ]:
        assert time.monotonic() < deadline, [s.name for s in capture_telemetry.spans]
        time.sleep(0.05)
    assert _slow_lines(capture_telemetry) == []
