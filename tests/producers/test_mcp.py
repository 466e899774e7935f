"""instrument_mcp() with the real MCP SDK: mcp.Client over streamable HTTP against uvicorn."""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx2
import mcp
import pytest
from fastapi import FastAPI
from mcp.client.streamable_http import streamable_http_client
from mcp.server.mcpserver import MCPServer
from mcp_types import CallToolResult, TextContent
from opentelemetry.trace import SpanKind
from pydantic import ValidationError as PydanticValidationError

from atoms_otel import get_logger, instrument_mcp
from atoms_otel.producers.mcp import McpTelemetryMiddleware
from atoms_otel.testing import CapturedTelemetry
from tests.support.server import serve

pytestmark = pytest.mark.real
log = get_logger("tests.tools")


def build_server() -> MCPServer:
    server = MCPServer("atoms-tools")

    @server.tool()
    def add(a: int, b: int) -> int:
        """Add two numbers."""
        log.info("adding")
        return a + b

    @server.tool()
    def explode(reason: str) -> str:
        """Always raises."""
        raise RuntimeError(reason)

    @server.tool()
    def refuse(item: str) -> CallToolResult:
        """Returns an error result without raising."""
        return CallToolResult(content=[TextContent(type="text", text=f"no {item}")], is_error=True)

    @server.tool()
    def login(username: str, password: str) -> str:
        """Takes a secret argument."""
        return f"hello {username}"

    return server


def mount(server: MCPServer) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with server.session_manager.run():
            yield

    app = FastAPI(lifespan=lifespan)
    app.mount("/mcp", server.streamable_http_app(streamable_http_path="/"))
    return app


@pytest.fixture
def server() -> MCPServer:
    return instrument_mcp(build_server())


@pytest.fixture
def base_url(server: MCPServer, capture_telemetry: CapturedTelemetry) -> Iterator[str]:
    app = mount(server)
    capture_telemetry.reconfigure(app=app)
    with serve(app) as url:
        yield url + "/mcp/"


def call(
    url: str, *calls: tuple[str, dict[str, Any]], mode: str = "auto", headers: dict[str, str] | None = None
) -> list[Any]:
    async def run() -> list[Any]:
        target: Any = url
        if headers:
            target = streamable_http_client(url, http_client=httpx2.AsyncClient(headers=headers, timeout=30))
        async with mcp.Client(target, mode=mode) as client:  # type: ignore[arg-type]
            return [await client.call_tool(name, arguments) for name, arguments in calls]

    return asyncio.run(run())


def mcp_server_spans(capture: CapturedTelemetry, name: str) -> list[Any]:
    return [s for s in capture.spans if s.kind is SpanKind.SERVER and s.name == name]


def test_tool_calls_are_counted_and_timed(base_url: str, capture_telemetry: CapturedTelemetry) -> None:
    """Every tools/call lands in tool_executions_total and tool_execution_duration_seconds."""
    results = call(base_url, ("add", {"a": 1, "b": 2}), ("add", {"a": 3, "b": 4}))
    assert [r.structured_content for r in results] == [{"result": 3}, {"result": 7}]
    assert capture_telemetry.metric_value("tool_executions_total", tool="add", status="success") == 2
    assert capture_telemetry.metric_value("tool_execution_duration_seconds", tool="add") == 2


def test_a_tool_that_raises_counts_as_an_error(base_url: str, capture_telemetry: CapturedTelemetry) -> None:
    """The SDK turns the exception into an error result; we count status=error, error.type=tool_error."""
    [result] = call(base_url, ("explode", {"reason": "disk full"}))
    assert result.is_error
    assert capture_telemetry.metric_value("tool_executions_total", tool="explode", status="error") == 1
    assert (
        capture_telemetry.metric_value(
            "mcp.server.operation.duration", **{"gen_ai.tool.name": "explode", "error.type": "tool_error"}
        )
        == 1
    )
    assert capture_telemetry.metric_value("errors_total", error_type="tool_error", source="mcp") == 1


def test_an_error_result_counts_as_an_error(base_url: str, capture_telemetry: CapturedTelemetry) -> None:
    """A tool returning is_error=True without raising is an error too."""
    [result] = call(base_url, ("refuse", {"item": "cake"}))
    assert result.is_error
    assert capture_telemetry.metric_value("tool_executions_total", tool="refuse", status="error") == 1


def test_operation_duration_follows_the_mcp_conventions(
    base_url: str, capture_telemetry: CapturedTelemetry
) -> None:
    """mcp.server.operation.duration: seconds, the MCP buckets, mcp.method.name and gen_ai.tool.name."""
    call(base_url, ("add", {"a": 1, "b": 1}))
    metric = capture_telemetry.metrics()["mcp.server.operation.duration"]
    assert metric.unit == "s"
    points = {
        (p.attributes.get("mcp.method.name"), p.attributes.get("gen_ai.tool.name")): p
        for p in metric.data.data_points
    }
    assert points[("tools/call", "add")].count == 1
    assert points[("tools/call", "add")].explicit_bounds[:3] == (0.01, 0.02, 0.05)
    assert any(method != "tools/call" for method, _ in points)
    text = capture_telemetry.prometheus_text()
    [count] = [
        line
        for line in text.splitlines()
        if line.startswith("mcp_server_operation_duration_seconds_count{")
        and 'gen_ai_tool_name="add"' in line
        and 'mcp_method_name="tools/call"' in line
    ]
    assert count.endswith("} 1.0") and 'gen_ai_operation_name="execute_tool"' in count


def test_the_sdk_span_is_enriched_not_duplicated(base_url: str, capture_telemetry: CapturedTelemetry) -> None:
    """One SERVER span per tool call (the SDK's), with our correlation id, the session id, and a
    link to the HTTP request that carried it."""
    call(base_url, ("add", {"a": 1, "b": 2}), mode="legacy", headers={"X-Correlation-ID": "mcp-corr-1"})
    [span] = mcp_server_spans(capture_telemetry, "tools/call add")
    assert span.attributes["gen_ai.tool.name"] == "add"
    assert span.attributes["atoms.correlation_id"] == "mcp-corr-1"
    assert len(span.attributes["mcp.session.id"]) >= 16
    http_spans = [
        s for s in capture_telemetry.spans if s.kind is SpanKind.SERVER and s.name.startswith("POST ")
    ]
    http_ids = {s.context.span_id for s in http_spans}
    # The SDK parents the span on the client's _meta trace context; the HTTP request is linked.
    assert [link.context.span_id in http_ids for link in span.links] == [True]


def test_tool_logs_carry_the_http_requests_correlation_id(
    base_url: str, capture_telemetry: CapturedTelemetry
) -> None:
    """A log line inside a tool carries the correlation id sent on the HTTP request, and the tool name."""
    call(base_url, ("add", {"a": 5, "b": 5}), mode="legacy", headers={"X-Correlation-ID": "mcp-corr-2"})
    [line] = [x for x in capture_telemetry.log_lines if x["message"] == "adding"]
    assert (line["correlation_id"], line["tool"], line["mcp_method"]) == ("mcp-corr-2", "add", "tools/call")
    assert "session_id" in line


def test_tools_added_after_instrumentation_are_observed(
    server: MCPServer, base_url: str, capture_telemetry: CapturedTelemetry
) -> None:
    """instrument_mcp() observes tools registered later too."""

    @server.tool()
    def late(x: int) -> int:
        """Registered after instrument_mcp()."""
        return x

    call(base_url, ("late", {"x": 1}))
    assert capture_telemetry.metric_value("tool_executions_total", tool="late", status="success") == 1


def test_arguments_are_not_recorded_by_default(base_url: str, capture_telemetry: CapturedTelemetry) -> None:
    """Without opting in, no span carries the tool arguments."""
    call(base_url, ("login", {"username": "ada", "password": "hunter2"}))
    for span in capture_telemetry.spans:
        assert "hunter2" not in str(dict(span.attributes or {}))
    assert "hunter2" not in "".join(capture_telemetry.raw_log_lines)


def test_opted_in_arguments_are_scrubbed(capture_telemetry: CapturedTelemetry) -> None:
    """record_arguments=True puts the arguments on the span, secrets redacted."""
    server = instrument_mcp(build_server(), record_arguments=True)
    app = mount(server)
    capture_telemetry.reconfigure(app=app)
    with serve(app) as url:
        call(url + "/mcp/", ("login", {"username": "ada", "password": "hunter2"}))
    [span] = mcp_server_spans(capture_telemetry, "tools/call login")
    arguments = span.attributes["gen_ai.tool.call.arguments"]
    assert '"username":"ada"' in arguments and "hunter2" not in arguments and "[REDACTED]" in arguments


def test_instrument_mcp_is_idempotent() -> None:
    """A second call adds no second middleware."""
    server = build_server()
    instrument_mcp(server)
    instrument_mcp(server)
    assert sum(isinstance(m, McpTelemetryMiddleware) for m in server.middleware) == 1


def test_instrument_mcp_rejects_other_objects() -> None:
    """Anything without the SDK's middleware chain is refused with a clear message."""
    with pytest.raises(TypeError, match="MCPServer"):
        instrument_mcp(object())


def test_missing_sdk_names_the_extra_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the mcp package the ImportError says pip install 'atoms-otel[mcp]'."""
    real_import = builtins.__import__

    def no_mcp(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "mcp" or name.startswith("mcp."):
            raise ImportError("No module named 'mcp'")
        return real_import(name, *args, **kwargs)

    monkeypatch.delitem(sys.modules, "mcp", raising=False)
    monkeypatch.setattr(builtins, "__import__", no_mcp)
    with pytest.raises(ImportError, match=r"pip install 'atoms-otel\[mcp\]'"):
        instrument_mcp(object())


def test_configure_instruments_mounted_mcp_servers(capture_telemetry: CapturedTelemetry) -> None:
    """configure(app=app) finds the MCP server mounted on the app and instruments it: one call."""
    server = build_server()
    app = mount(server)
    capture_telemetry.reconfigure(app=app)
    assert sum(isinstance(m, McpTelemetryMiddleware) for m in server.middleware) == 1
    with serve(app) as url:
        call(url + "/mcp/", ("add", {"a": 1, "b": 1}))
    assert capture_telemetry.metric_value("tool_executions_total", tool="add", status="success") == 1


def test_protocol_failures_are_named_by_their_json_rpc_code(capture_telemetry: CapturedTelemetry) -> None:
    """Malformed params (a pydantic ValidationError from the SDK) record error.type -32602 and
    propagate unchanged, so the SDK still answers Invalid params."""
    from pydantic import BaseModel

    class Params(BaseModel):
        name: str

    try:
        Params.model_validate({})
    except PydanticValidationError as exc:
        invalid = exc

    class Request:  # what the SDK hands a middleware: method and raw params
        method = "tools/call"
        params = {"arguments": {}}
        request = None

    async def call_next(ctx: Any) -> Any:
        raise invalid

    middleware = McpTelemetryMiddleware(telemetry=capture_telemetry.telemetry)  # type: ignore[arg-type]
    with pytest.raises(PydanticValidationError) as caught:
        asyncio.run(middleware(Request(), call_next))
    assert caught.value is invalid
    assert (
        capture_telemetry.metric_value(
            "mcp.server.operation.duration", **{"mcp.method.name": "tools/call", "error.type": "-32602"}
        )
        == 1
    )
