"""MCP spans and metrics follow the MCP semantic conventions, with the real mcp SDK client and server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import mcp
import pytest
from mcp.server.mcpserver import MCPServer
from mcp.shared.exceptions import MCPError
from opentelemetry.semconv._incubating.attributes.gen_ai_attributes import (
    GEN_AI_OPERATION_NAME,
    GEN_AI_TOOL_NAME,
)
from opentelemetry.semconv._incubating.attributes.jsonrpc_attributes import JSONRPC_REQUEST_ID
from opentelemetry.semconv._incubating.attributes.mcp_attributes import (
    MCP_METHOD_NAME,
    MCP_PROTOCOL_VERSION,
    MCP_SESSION_ID,
)
from opentelemetry.semconv._incubating.attributes.rpc_attributes import RPC_RESPONSE_STATUS_CODE
from opentelemetry.semconv._incubating.metrics.mcp_metrics import (
    MCP_SERVER_OPERATION_DURATION,
    MCP_SERVER_SESSION_DURATION,
)
from opentelemetry.semconv.attributes.error_attributes import ERROR_TYPE
from opentelemetry.semconv.attributes.exception_attributes import (
    EXCEPTION_MESSAGE,
    EXCEPTION_STACKTRACE,
    EXCEPTION_TYPE,
)
from opentelemetry.semconv.attributes.network_attributes import NETWORK_PROTOCOL_NAME, NETWORK_TRANSPORT
from opentelemetry.trace import SpanKind, StatusCode

from atoms_otel import LogContext, instrument_mcp
from atoms_otel.base.context import current_context
from atoms_otel.testing import CapturedTelemetry
from tests.producers.test_mcp import build_server, call, mount
from tests.support.server import serve

pytestmark = pytest.mark.real

SECRET = "sk_live_4eC39HqLyjWDarjtT1zdp7dc"


def semconv_server() -> MCPServer:
    server = build_server()

    @server.tool()
    def leak(reason: str) -> str:
        """Raises with a credential in its message."""
        raise ValueError(f"upstream refused api_key={SECRET}: {reason}")

    @server.tool()
    def over_quota() -> str:
        """Answers with a JSON-RPC error."""
        raise MCPError(code=-32001, message="quota exceeded")

    return server


@pytest.fixture
def url(capture_telemetry: CapturedTelemetry) -> Iterator[str]:
    server = instrument_mcp(semconv_server())
    app = mount(server)
    capture_telemetry.reconfigure(app=app)
    with serve(app) as base:
        yield base + "/mcp/"


def server_span(capture: CapturedTelemetry, name: str) -> Any:
    [span] = [s for s in capture.spans if s.kind is SpanKind.SERVER and s.name == name]
    return span


def operation_points(capture: CapturedTelemetry) -> list[dict[str, Any]]:
    metric = capture.metrics()[MCP_SERVER_OPERATION_DURATION]
    return [dict(p.attributes or {}) for p in metric.data.data_points]


def test_a_tool_call_span_carries_the_mcp_attributes(url: str, capture_telemetry: CapturedTelemetry) -> None:
    """One SERVER span `tools/call add` with the method, protocol version, request id, tool, session
    and transport attributes of the MCP conventions; the metric has the same low-cardinality ones."""
    call(url, ("add", {"a": 1, "b": 2}), mode="legacy")
    span = server_span(capture_telemetry, "tools/call add")
    attributes = dict(span.attributes or {})
    assert attributes[MCP_METHOD_NAME] == "tools/call"
    assert attributes[GEN_AI_OPERATION_NAME] == "execute_tool"
    assert attributes[GEN_AI_TOOL_NAME] == "add"
    assert attributes[MCP_PROTOCOL_VERSION] == "2025-11-25"
    assert attributes[JSONRPC_REQUEST_ID].isdigit()
    assert len(attributes[MCP_SESSION_ID]) >= 16
    assert (attributes[NETWORK_TRANSPORT], attributes[NETWORK_PROTOCOL_NAME]) == ("tcp", "http")
    assert ERROR_TYPE not in attributes and span.status.status_code is StatusCode.UNSET
    assert span.instrumentation_scope.name != "mcp-python-sdk"  # the SDK's span middleware was replaced
    [point] = [p for p in operation_points(capture_telemetry) if p.get(GEN_AI_TOOL_NAME) == "add"]
    assert point == {
        MCP_METHOD_NAME: "tools/call",
        GEN_AI_TOOL_NAME: "add",
        GEN_AI_OPERATION_NAME: "execute_tool",
        MCP_PROTOCOL_VERSION: "2025-11-25",
        NETWORK_TRANSPORT: "tcp",
        NETWORK_PROTOCOL_NAME: "http",
        "network.protocol.version": "1.1",
    }


def test_a_failed_tool_leaves_its_exception_scrubbed_on_the_span(
    url: str, capture_telemetry: CapturedTelemetry
) -> None:
    """The tool's own exception is an event (type, message, stack) with the credential redacted;
    the status is ERROR with a scrubbed description; error.type is tool_error on span and metric."""
    [result] = call(url, ("leak", {"reason": "try later"}))
    assert result.is_error
    span = server_span(capture_telemetry, "tools/call leak")
    [event] = [e for e in span.events if e.name == "exception"]
    assert event.attributes[EXCEPTION_TYPE] == "ValueError"
    assert "upstream refused" in event.attributes[EXCEPTION_MESSAGE]
    assert SECRET not in event.attributes[EXCEPTION_MESSAGE] + event.attributes[EXCEPTION_STACKTRACE]
    assert "in leak" in event.attributes[EXCEPTION_STACKTRACE]  # the tool's own frame
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description.startswith("ValueError: upstream refused")
    assert SECRET not in span.status.description
    assert span.attributes[ERROR_TYPE] == "tool_error"
    [point] = [p for p in operation_points(capture_telemetry) if p.get(GEN_AI_TOOL_NAME) == "leak"]
    assert point[ERROR_TYPE] == "tool_error"
    assert SECRET not in "".join(capture_telemetry.raw_log_lines)


def test_an_unknown_tool_is_not_a_tool_error(url: str, capture_telemetry: CapturedTelemetry) -> None:
    """An unknown tool: error.type unknown_tool on the span and on the metric, no exception event,
    and the span is named by the method alone (the client's name is not a low-cardinality target)."""
    [result] = call(url, ("no_such_tool", {}))
    assert result.is_error
    span = server_span(capture_telemetry, "tools/call")
    assert span.attributes[ERROR_TYPE] == "unknown_tool"
    assert span.attributes[GEN_AI_TOOL_NAME] == "no_such_tool"
    assert span.status.status_code is StatusCode.ERROR and not span.events
    [point] = [p for p in operation_points(capture_telemetry) if ERROR_TYPE in p]
    assert (point[ERROR_TYPE], point[GEN_AI_TOOL_NAME]) == ("unknown_tool", "_OTHER")


def test_a_json_rpc_error_is_named_by_its_code(url: str, capture_telemetry: CapturedTelemetry) -> None:
    """A tool raising MCPError answers with a JSON-RPC error: error.type and rpc.response.status_code
    are its code, the status description its message, on the span and on the metric."""
    refused: list[MCPError] = []
    try:
        call(url, ("over_quota", {}))
    except* MCPError as group:  # the client raises it out of its task group
        refused += _leaves(group)
    assert [e.code for e in refused] == [-32001]
    span = server_span(capture_telemetry, "tools/call over_quota")
    assert (span.attributes[ERROR_TYPE], span.attributes[RPC_RESPONSE_STATUS_CODE]) == ("-32001", "-32001")
    assert span.status.description == "quota exceeded"
    [point] = [p for p in operation_points(capture_telemetry) if p.get(GEN_AI_TOOL_NAME) == "over_quota"]
    assert (point[ERROR_TYPE], point[RPC_RESPONSE_STATUS_CODE]) == ("-32001", "-32001")


def _leaves(group: BaseExceptionGroup[MCPError]) -> list[MCPError]:
    return [
        leaf for e in group.exceptions for leaf in (_leaves(e) if isinstance(e, BaseExceptionGroup) else [e])
    ]


def _session_points(capture: CapturedTelemetry, deadline_s: float = 10.0) -> list[Any]:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        metric = capture.metrics().get(MCP_SERVER_SESSION_DURATION)
        if metric is not None and metric.data.data_points:
            return list(metric.data.data_points)
        time.sleep(0.05)
    return []


def test_a_streamable_http_session_is_timed(url: str, capture_telemetry: CapturedTelemetry) -> None:
    """A stateful streamable HTTP session, from initialize until the client closes it, is one
    observation of mcp.server.session.duration (seconds, transport and protocol version)."""
    call(url, ("add", {"a": 1, "b": 2}), ("add", {"a": 2, "b": 2}), mode="legacy")
    [point] = _session_points(capture_telemetry)
    assert point.count == 1 and 0 < point.sum < 30
    assert dict(point.attributes) == {
        MCP_PROTOCOL_VERSION: "2025-11-25",
        NETWORK_TRANSPORT: "tcp",
        NETWORK_PROTOCOL_NAME: "http",
        "network.protocol.version": "1.1",
    }
    assert capture_telemetry.metrics()[MCP_SERVER_SESSION_DURATION].unit == "s"


def test_an_in_process_session_is_timed_without_a_network_transport(
    capture_telemetry: CapturedTelemetry,
) -> None:
    """mcp.Client(server) in the same process: the handshake session is timed; no network.* (the
    SDK does not say which transport that is)."""
    capture_telemetry.reconfigure()
    server = instrument_mcp(semconv_server(), telemetry=capture_telemetry.telemetry)

    async def run() -> None:
        async with mcp.Client(server, mode="legacy") as client:
            await client.call_tool("add", {"a": 1, "b": 1})

    asyncio.run(run())
    [point] = _session_points(capture_telemetry)
    assert point.count == 1 and dict(point.attributes) == {MCP_PROTOCOL_VERSION: "2025-11-25"}
    span = server_span(capture_telemetry, "tools/call add")
    assert NETWORK_TRANSPORT not in span.attributes


def test_one_server_span_per_message_even_when_instrumented_twice(
    capture_telemetry: CapturedTelemetry,
) -> None:
    """instrument_mcp replaces the SDK's span middleware once; calling it again adds nothing."""
    capture_telemetry.reconfigure()
    server = semconv_server()
    for _ in range(2):
        instrument_mcp(server, telemetry=capture_telemetry.telemetry)
    assert [type(m).__name__ for m in server.middleware].count("OpenTelemetryMiddleware") == 0

    async def run() -> None:
        async with mcp.Client(server) as client:
            await client.call_tool("add", {"a": 1, "b": 1})

    asyncio.run(run())
    assert len([s for s in capture_telemetry.spans if s.name == "tools/call add"]) == 1


def test_operation_series_past_the_bound_are_recorded_the_same(
    capture_telemetry: CapturedTelemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """mcp.server.operation.duration series are bound once each; past the bound (here 1) they are
    recorded through the histogram with the same attributes, values and exemplars."""
    monkeypatch.setattr("atoms_otel.producers.mcp._MAX_LABEL_SETS", 1)
    capture_telemetry.reconfigure()
    server = instrument_mcp(semconv_server(), telemetry=capture_telemetry.telemetry)

    async def run() -> None:
        async with mcp.Client(server, mode="legacy") as client:
            for _ in range(2):
                await client.call_tool("add", {"a": 1, "b": 1})
                await client.call_tool("leak", {"reason": "again"})

    asyncio.run(run())
    metric = capture_telemetry.metrics()[MCP_SERVER_OPERATION_DURATION]
    points = {
        (p.attributes[MCP_METHOD_NAME], p.attributes.get(GEN_AI_TOOL_NAME)): p
        for p in metric.data.data_points
    }
    assert {key: p.count for key, p in points.items()} == {
        ("initialize", None): 1,
        ("notifications/initialized", None): 1,
        ("tools/list", None): 1,
        ("tools/call", "add"): 2,
        ("tools/call", "leak"): 2,
    }
    assert dict(points[("tools/call", "leak")].attributes) == {
        MCP_METHOD_NAME: "tools/call",
        GEN_AI_TOOL_NAME: "leak",
        GEN_AI_OPERATION_NAME: "execute_tool",
        ERROR_TYPE: "tool_error",
        MCP_PROTOCOL_VERSION: "2025-11-25",
    }
    spans = {s.name: s.context.trace_id for s in capture_telemetry.spans if s.kind is SpanKind.SERVER}
    for (method, tool), point in points.items():
        [exemplar] = {e.trace_id for e in point.exemplars} & {spans[f"{method} {tool}" if tool else method]}
        assert exemplar


def test_tool_log_lines_merge_the_callers_log_context(capture_telemetry: CapturedTelemetry) -> None:
    """A handler's log lines carry the caller's LogContext fields and the MCP ones (mcp_method,
    tool); the caller's context is as it was once the call returns."""
    capture_telemetry.reconfigure()
    server = instrument_mcp(build_server(), telemetry=capture_telemetry.telemetry)

    async def run() -> dict[str, Any]:
        with LogContext(correlation_id="outer-1", tenant="acme"):
            async with mcp.Client(server) as client:
                await client.call_tool("add", {"a": 1, "b": 1})
                return current_context()

    after = asyncio.run(run())
    [line] = [x for x in capture_telemetry.log_lines if x["message"] == "adding"]
    assert (line["correlation_id"], line["tenant"]) == ("outer-1", "acme")
    assert (line["mcp_method"], line["tool"]) == ("tools/call", "add")
    assert after == {"correlation_id": "outer-1", "tenant": "acme"}
