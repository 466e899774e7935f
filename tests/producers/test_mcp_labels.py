"""MCP labels stay bounded whatever the client sends, and a decorated MCP tool is counted once."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from mcp.server.mcpserver import MCPServer

from atoms_otel import instrument_mcp, observe_tool
from atoms_otel.testing import CapturedTelemetry
from tests.producers.test_mcp import build_server, call, mount
from tests.support.server import serve

pytestmark = pytest.mark.real

TOOL_METRICS = ("tool_executions_total", "tool_execution_duration_seconds", "mcp.server.operation.duration")


def _label_values(capture: CapturedTelemetry, metric: str, label: str) -> set[str]:
    values: set[str] = set()
    for found in capture._matching(metric):
        for point in found.data.data_points:
            value = dict(point.attributes or {}).get(label)
            if value is not None:
                values.add(str(value))
    return values


@pytest.fixture
def url(capture_telemetry: CapturedTelemetry) -> Iterator[str]:
    server = instrument_mcp(build_server())
    app = mount(server)
    capture_telemetry.reconfigure(app=app)
    with serve(app) as base:
        yield base + "/mcp/"


def test_unknown_tool_names_fold_into_one_other_label(url: str, capture_telemetry: CapturedTelemetry) -> None:
    """40 bogus 2 KB tool names add one `_OTHER` series, error_type unknown_tool; real tools keep theirs."""
    bogus = [(f"{i:04d}" + "x" * 2048, {}) for i in range(20)] + [(f"nope_{i}", {}) for i in range(20)]
    results = call(url, *bogus, ("add", {"a": 1, "b": 2}))
    assert all(r.is_error for r in results[:-1]) and results[-1].structured_content == {"result": 3}
    assert _label_values(capture_telemetry, "tool_executions_total", "tool") == {"_OTHER", "add"}
    assert _label_values(capture_telemetry, "tool_execution_duration_seconds", "tool") == {"_OTHER", "add"}
    assert _label_values(capture_telemetry, "mcp.server.operation.duration", "gen_ai.tool.name") == {
        "_OTHER",
        "add",
    }
    assert capture_telemetry.metric_value("tool_executions_total", tool="_OTHER", status="error") == 40
    assert capture_telemetry.metric_value("errors_total", error_type="unknown_tool", source="mcp") == 40
    assert capture_telemetry.metric_value("errors_total", error_type="tool_error") == 0
    assert capture_telemetry.metric_value("tool_executions_total", tool="add", status="success") == 1
    ours = [line for line in capture_telemetry.raw_log_lines if '"atoms_otel.mcp"' in line]
    assert len(ours) == 40 and max(len(line) for line in ours) < 1024  # the SDK's own INFO lines are its own


def test_invalid_arguments_have_their_own_error_type(url: str, capture_telemetry: CapturedTelemetry) -> None:
    """Arguments the SDK rejects before the tool runs count as invalid_arguments, not tool_error."""
    [result] = call(url, ("add", {"a": "not a number", "b": 2}))
    assert result.is_error
    assert capture_telemetry.metric_value("errors_total", error_type="invalid_arguments", source="mcp") == 1
    assert capture_telemetry.metric_value("errors_total", error_type="tool_error") == 0
    assert capture_telemetry.metric_value("tool_executions_total", tool="add", status="error") == 1


def test_tools_registered_after_instrumentation_get_their_own_label(
    capture_telemetry: CapturedTelemetry,
) -> None:
    """The registry is re-read when a name is not known yet: a tool added later is labelled by name."""
    server = instrument_mcp(MCPServer("late"))
    app = mount(server)
    capture_telemetry.reconfigure(app=app)
    with serve(app) as base:
        call(base + "/mcp/", ("later", {}))

        @server.tool()
        def later() -> str:
            """Added after the first call."""
            return "ok"

        call(base + "/mcp/", ("later", {}))
    assert capture_telemetry.metric_value("tool_executions_total", tool="_OTHER", status="error") == 1
    assert capture_telemetry.metric_value("tool_executions_total", tool="later", status="success") == 1


def _decorated_server(capture: CapturedTelemetry) -> MCPServer:
    server = MCPServer("decorated")
    telemetry = capture.telemetry
    assert telemetry is not None

    @server.tool()
    @observe_tool("divide", telemetry=telemetry)
    def divide(a: float, b: float) -> float:
        """Divides; fails on zero."""
        return a / b

    @server.tool()
    @observe_tool("helper_total", telemetry=telemetry)
    def helper_total(values: list[int]) -> int:
        """Sums."""
        return sum(values)

    return instrument_mcp(server)


def test_an_observe_tool_served_over_mcp_is_counted_once(capture_telemetry: CapturedTelemetry) -> None:
    """@observe_tool under an instrumented MCP server: one count, one duration, one failure line per call."""
    capture_telemetry.reconfigure()
    server = _decorated_server(capture_telemetry)
    app = mount(server)
    capture_telemetry.reconfigure(app=app)
    with serve(app) as base:
        results = call(
            base + "/mcp/",
            ("divide", {"a": 1, "b": 2}),
            ("divide", {"a": 1, "b": 0}),
            ("helper_total", {"values": [1]}),
        )
    assert [r.is_error for r in results] == [False, True, False]
    assert capture_telemetry.metric_value("tool_executions_total", tool="divide", status="success") == 1
    assert capture_telemetry.metric_value("tool_executions_total", tool="divide", status="error") == 1
    assert capture_telemetry.metric_value("tool_execution_duration_seconds", tool="divide") == 2
    assert capture_telemetry.metric_value("tool_executions_total", tool="helper_total") == 1
    assert capture_telemetry.metric_value("errors_total") == 1
    failures = [
        line for line in capture_telemetry.log_lines
        if line.get("level") in ("ERROR", "WARNING") and "divide" in str(line.get("message"))
    ]  # fmt: skip
    assert len([f for f in failures if f["level"] == "ERROR"]) <= 1 and len(failures) <= 2, failures
    spans = [s.name for s in capture_telemetry.spans if s.name.startswith("execute_tool")]
    assert sorted(spans) == ["execute_tool divide", "execute_tool divide", "execute_tool helper_total"]
    failed = [s for s in capture_telemetry.spans if s.name.endswith(" divide") and s.events]
    # the decorator's span and the MCP span (its parent) both carry the tool's exception
    assert sorted(s.name for s in failed) == ["execute_tool divide", "tools/call divide"]
    assert {s.events[0].attributes["exception.type"] for s in failed} == {"ZeroDivisionError"}
    assert {s.attributes["error.type"] for s in failed} == {"ZeroDivisionError", "tool_error"}
    execute, served = sorted(failed, key=lambda s: s.name)
    assert execute.parent is not None and execute.parent.span_id == served.context.span_id


def test_methods_outside_the_mcp_spec_are_labelled_other(capture_telemetry: CapturedTelemetry) -> None:
    """A JSON-RPC method the MCP spec does not define becomes mcp.method.name=_OTHER."""
    import asyncio

    from atoms_otel.producers.mcp import McpTelemetryMiddleware

    class Request:  # what the SDK hands a middleware: method and raw params
        method = "x" * 2048
        params: dict[str, object] = {}
        request = None

    async def call_next(ctx: object) -> dict[str, object]:
        return {}

    middleware = McpTelemetryMiddleware(telemetry=capture_telemetry.telemetry)  # type: ignore[arg-type]
    for _ in range(3):
        asyncio.run(middleware(Request(), call_next))
    assert _label_values(capture_telemetry, "mcp.server.operation.duration", "mcp.method.name") == {"_OTHER"}
