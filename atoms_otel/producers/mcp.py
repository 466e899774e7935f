"""Observe every MCP request an ``mcp.server.mcpserver.MCPServer`` (mcp 2.x) serves.

>>> mcp = MCPServer("atoms-tools")
>>> instrument_mcp(mcp)

``instrument_mcp`` appends one server middleware to ``server.middleware`` — the SDK's public,
outermost-first chain that wraps every inbound message — so every tool, present and future, is
observed without touching the tools. It runs inside the SDK's own OpenTelemetry middleware, whose
SERVER span (``tools/call {tool}``, ``mcp.method.name``, ``gen_ai.tool.name``) is current: we
enrich that span instead of opening a second one.

Per request it records ``mcp.server.operation.duration`` (seconds, the MCP semantic-convention
buckets; Prometheus ``mcp_server_operation_duration_seconds``) with ``mcp.method.name``,
``gen_ai.tool.name`` and ``error.type``; per tool call also ``tool_executions_total{tool,status}``
and ``tool_execution_duration_seconds{tool,status}``, like ``@observe_tool``. A tool that raises
(the SDK turns that into an error result) or returns an error result counts as ``status="error"``
with ``error.type="tool_error"``; a protocol error carries the JSON-RPC error code.

Over streamable HTTP the SDK runs handlers in its session task group, outside the HTTP request's
context. The middleware restores the request's correlation id and log context from the HTTP
request the SDK hands it, links the MCP span to the HTTP server span, and sets ``mcp.session.id``.
Tool arguments are never recorded unless ``record_arguments=True``, and then scrubbed.
"""

from __future__ import annotations

import inspect
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, Final

from opentelemetry import trace
from pydantic import ValidationError

from atoms_otel.base import guard as _guard
from atoms_otel.base.context import LogContext, McpToolCall, mcp_tool_call_var
from atoms_otel.base.semconv import attribute_value, exception_type
from atoms_otel.core.telemetry import Telemetry
from atoms_otel.otel.logs import get_logger
from atoms_otel.producers.http.state import STATE_KEY
from atoms_otel.producers.instrument.tools import ToolCallRecorder

__all__ = ["MCP_METHODS", "OTHER", "McpTelemetryMiddleware", "instrument_mcp"]

_INSTALL_HINT: Final = "instrument_mcp() needs the MCP SDK: pip install 'atoms-otel[mcp]'"
_SESSION_HEADER: Final = "mcp-session-id"
_logger = get_logger("atoms_otel.mcp")

OTHER: Final = "_OTHER"
"""The label value of a tool the server does not have, or of a method the MCP spec does not define."""
MCP_METHODS: Final = frozenset(
    {
        "initialize", "ping", "tools/list", "tools/call", "resources/list", "resources/templates/list",
        "resources/read", "resources/subscribe", "resources/unsubscribe", "prompts/list", "prompts/get",
        "completion/complete", "logging/setLevel", "sampling/createMessage", "elicitation/create",
        "roots/list", "tasks/get", "tasks/result", "tasks/list", "tasks/cancel",
        "notifications/initialized", "notifications/cancelled", "notifications/progress",
        "notifications/message", "notifications/resources/updated", "notifications/resources/list_changed",
        "notifications/tools/list_changed", "notifications/prompts/list_changed",
        "notifications/roots/list_changed", "notifications/elicitation/complete",
        "notifications/tasks/status",
    }
)  # fmt: skip
"""The methods the MCP specification defines (2025-11-25 and 2026-07-28): the only method labels."""
_MAX_TOOL_NAME: Final = 128  # the MCP spec's limit on a tool name; longer is never a label
_UNLISTED_LIMIT: Final = 100  # a server that cannot list its tools: first names seen, then _OTHER
ToolLister = Callable[[], Awaitable[Iterable[Any]]]


class _ToolLabels:
    """Which tool names may be labels: those the server has registered (its public ``list_tools()``,
    re-read when an unknown name arrives, so tools added later are labelled too)."""

    def __init__(self, lister: ToolLister | None) -> None:
        self._lister = lister
        self._known: frozenset[str] = frozenset()

    async def label(self, name: str | None) -> tuple[str, bool]:
        """The label for ``name`` and whether the server has such a tool."""
        if name is None or len(name) > _MAX_TOOL_NAME:
            return OTHER, name is not None and self._lister is None
        if name in self._known:
            return name, True
        if self._lister is None:  # no registry to ask: bounded, not validated
            if len(self._known) >= _UNLISTED_LIMIT:
                return OTHER, True
            self._known = self._known | {name}
            return name, True
        try:
            self._known = frozenset(str(getattr(tool, "name", "")) for tool in await self._lister())
        except Exception as exc:
            _guard.report_internal_error("mcp list_tools", exc)
        return (name, True) if name in self._known else (OTHER, False)


class McpTelemetryMiddleware:
    """The MCP server middleware :func:`instrument_mcp` installs (``ServerMiddleware[Any]``)."""

    atoms_otel = True  # marks our middleware in server.middleware, for idempotency

    def __init__(
        self, *, telemetry: Telemetry, record_arguments: bool = False, list_tools: ToolLister | None = None
    ) -> None:
        self.telemetry = telemetry
        self.record_arguments = record_arguments
        self._tools = ToolCallRecorder(telemetry.metrics)
        self._operations = telemetry.metrics.mcp_server_operation_duration
        self._labels = _ToolLabels(list_tools)

    async def __call__(self, ctx: Any, call_next: Callable[[Any], Awaitable[Any]]) -> Any:
        raw_method = str(ctx.method)
        method = raw_method if raw_method in MCP_METHODS else OTHER
        raw_tool = _tool_name(ctx) if method == "tools/call" else None
        tool, registered = await self._labels.label(raw_tool) if method == "tools/call" else (None, True)
        request = getattr(ctx, "request", None)
        state = _http_state(request)
        # The SDK may run this in a task that inherited another request's context: restate ours.
        log_context = LogContext(
            correlation_id=getattr(state, "correlation_id", None) or None,
            session_id=_session_id(request),
            request_path=_request_path(request),
            mcp_method=raw_method[:_MAX_TOOL_NAME],
            **({"tool": raw_tool[:_MAX_TOOL_NAME]} if raw_tool is not None else {}),
        )
        self._enrich_span(ctx, state, request, raw_tool)
        # An @observe_tool of the same name inside this call records only its span (docs/mcp.md).
        served = mcp_tool_call_var.set(McpToolCall(raw_tool) if raw_tool is not None and registered else None)
        start = time.perf_counter()
        with log_context:
            try:
                result = await call_next(ctx)
            except BaseException as exc:
                self._record(method, tool, start, _error_type(exc), exc)
                raise
            finally:
                mcp_tool_call_var.reset(served)
            self._record(method, tool, start, _result_error(method, result, raw_tool, registered), None)
            return result

    def _enrich_span(self, ctx: Any, state: Any, request: Any, tool: str | None) -> None:
        try:
            span = trace.get_current_span()
            if not span.is_recording():
                return
            session = _session_id(request)
            if session:
                span.set_attribute("mcp.session.id", session)
            correlation_id = getattr(state, "correlation_id", None)
            if correlation_id:
                span.set_attribute("correlation.id", correlation_id)
            http_span = getattr(state, "span", None)
            if http_span is not None:
                http_context = http_span.get_span_context()
                if http_context.is_valid and http_context.trace_id != span.get_span_context().trace_id:
                    span.add_link(http_context, {"atoms_otel.link": "http.request"})
            if self.record_arguments and tool is not None:
                arguments = (ctx.params or {}).get("arguments")
                if isinstance(arguments, Mapping):
                    scrubber = self.telemetry.scrubber
                    shown = scrubber.scrub_mapping(arguments) if scrubber is not None else arguments
                    span.set_attribute("gen_ai.tool.call.arguments", attribute_value(dict(shown)))
        except Exception as exc:
            _guard.report_internal_error("mcp span enrichment", exc)

    def _record(
        self, method: str, tool: str | None, start: float, error: str | None, exc: BaseException | None
    ) -> None:
        try:
            duration = time.perf_counter() - start
            attributes: dict[str, str] = {"mcp.method.name": method}
            if tool is not None:
                attributes["gen_ai.tool.name"] = tool
            if error is not None:
                attributes["error.type"] = error
            self._operations.observe(duration, attributes)
            if tool is None:
                return
            self._tools.record(tool, duration, error, "mcp")
            if error is not None:
                _logger.warning(
                    "MCP tool %s failed: %s",
                    tool,
                    error,
                    extra_fields={"tool": tool, "error_type": error, "duration_ms": round(duration * 1e3, 3)},
                    exc_info=exc,
                )
        except Exception as internal:
            _guard.report_internal_error("mcp metrics", internal)


def _tool_name(ctx: Any) -> str | None:
    params = ctx.params
    name = params.get("name") if isinstance(params, Mapping) else None
    return name if isinstance(name, str) else None


def _http_state(request: Any) -> Any:
    """Our middleware's per-request state, from the HTTP request the SDK received the message on."""
    scope = getattr(request, "scope", None)
    return scope.get(STATE_KEY) if isinstance(scope, Mapping) else None


def _request_path(request: Any) -> str | None:
    scope = getattr(request, "scope", None)
    path = scope.get("path") if isinstance(scope, Mapping) else None
    return path if isinstance(path, str) else None


def _session_id(request: Any) -> str | None:
    headers = getattr(request, "headers", None)
    value = headers.get(_SESSION_HEADER) if headers is not None else None
    return value if isinstance(value, str) and value else None


_INVALID_PARAMS: Final = "-32602"  # JSON-RPC "Invalid params"


def _error_type(exc: BaseException) -> str:
    """A protocol error is named by its JSON-RPC code, as the SDK's span names it; others by class."""
    error = getattr(exc, "error", None)
    code = getattr(error, "code", None)
    if isinstance(code, int):
        return str(code)
    if isinstance(exc, ValidationError):  # malformed params: the SDK answers Invalid params
        return _INVALID_PARAMS
    return exception_type(exc)


def _result_error(method: str, result: Any, tool: str | None, registered: bool) -> str | None:
    """For an error result of a tool call: ``unknown_tool`` (no such tool on the server),
    ``invalid_arguments`` (the SDK rejected the arguments before the tool ran), else ``tool_error``
    (the tool ran and failed, or returned an error result)."""
    if method != "tools/call":
        return None
    failed = getattr(result, "is_error", False) is True or (
        isinstance(result, Mapping) and result.get("isError") is True
    )
    if not failed:
        return None
    if not registered:
        return "unknown_tool"
    if tool is not None and _rejected_arguments(result, tool):
        return "invalid_arguments"
    return "tool_error"


# mcp 2.3's Tool.run documents its message: "Error executing tool <name>: <the ValidationError>";
# pydantic's ValidationError text starts "<n> validation error(s) for <model>".
_VALIDATION: Final = re.compile(r"\d+ validation errors? for ")


def _rejected_arguments(result: Any, tool: str) -> bool:
    content = result.get("content") if isinstance(result, Mapping) else getattr(result, "content", None)
    first = content[0] if isinstance(content, list) and content else None
    text = first.get("text") if isinstance(first, Mapping) else getattr(first, "text", None)
    prefix = f"Error executing tool {tool}: "
    return isinstance(text, str) and text.startswith(prefix) and bool(_VALIDATION.match(text, len(prefix)))


def instrument_mcp(server: Any, *, telemetry: Telemetry, record_arguments: bool = False) -> Any:
    """Observe every request ``server`` (an ``MCPServer``, or a low-level ``Server``) handles.

    Labels are bounded whatever the client sends: ``tool`` / ``gen_ai.tool.name`` is a tool the
    server has registered (read through ``MCPServer.list_tools()``), ``mcp.method.name`` a method of
    the MCP spec (:data:`MCP_METHODS`); anything else is ``_OTHER``. A server without
    ``list_tools()`` labels the first 100 tool names of at most 128 characters, then ``_OTHER``.

    Idempotent: a second call does not add a second middleware. ``record_arguments=True`` puts
    each tool call's arguments on the span as ``gen_ai.tool.call.arguments``, scrubbed of
    secret-looking keys. Returns ``server``.
    """
    try:
        import mcp  # noqa: F401 - only to fail early with the install hint
    except ImportError as exc:
        raise ImportError(_INSTALL_HINT) from exc
    chain = getattr(server, "middleware", None)
    if not isinstance(chain, list):
        raise TypeError(
            "instrument_mcp() expects an mcp.server.mcpserver.MCPServer (mcp>=2.3), "
            f"got {type(server).__name__}"
        )
    if not any(getattr(m, "atoms_otel", False) for m in chain):
        lister = getattr(server, "list_tools", None)  # MCPServer's public registry of its tools
        chain.append(
            McpTelemetryMiddleware(
                telemetry=telemetry,
                record_arguments=record_arguments,
                list_tools=lister if inspect.iscoroutinefunction(lister) else None,
            )
        )
    return server
