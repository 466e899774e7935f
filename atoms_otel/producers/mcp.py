"""Observe every MCP request an ``mcp.server.mcpserver.MCPServer`` (mcp 2.x) serves.

>>> mcp = MCPServer("atoms-tools")
>>> instrument_mcp(mcp)

``instrument_mcp`` puts one server middleware in ``server.middleware`` — the SDK's public,
outermost-first chain that wraps every inbound message — so every tool, present and future, is
observed without touching the tools. It takes the place of the SDK's own OpenTelemetry middleware
(the first of the chain): one SERVER span per message, ``{mcp.method.name} {target}`` as the MCP
semantic conventions name it, with the SDK's attributes and ours, and ``error.type`` decided once
for the span and the metrics. See :mod:`atoms_otel.producers.mcp_outcome` for its values.

Per request it records ``mcp.server.operation.duration`` (seconds, the MCP semantic-convention
buckets; Prometheus ``mcp_server_operation_duration_seconds``); per tool call also
``tool_executions_total{tool,status}`` and ``tool_execution_duration_seconds{tool,status}``, like
``@observe_tool``; per session (stateful streamable HTTP, stdio) ``mcp.server.session.duration``.
A tool that raised (the SDK turns that into an error result) leaves its exception on the span as
an event, scrubbed on export like every exported exception.

Over streamable HTTP the SDK runs handlers in its session task group, outside the HTTP request's
context. The middleware restores the request's correlation id and log context from the HTTP
request the SDK hands it, links the MCP span to the HTTP server span, and sets ``mcp.session.id``.
Tool arguments are never recorded unless ``record_arguments=True``, and then scrubbed.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.semconv._incubating.attributes.gen_ai_attributes import (
    GEN_AI_OPERATION_NAME,
    GEN_AI_PROMPT_NAME,
    GEN_AI_TOOL_CALL_ARGUMENTS,
    GEN_AI_TOOL_NAME,
    GenAiOperationNameValues,
)
from opentelemetry.semconv._incubating.attributes.jsonrpc_attributes import JSONRPC_REQUEST_ID
from opentelemetry.semconv._incubating.attributes.mcp_attributes import (
    MCP_METHOD_NAME,
    MCP_PROTOCOL_VERSION,
    MCP_SESSION_ID,
)
from opentelemetry.semconv._incubating.attributes.rpc_attributes import RPC_RESPONSE_STATUS_CODE
from opentelemetry.semconv._incubating.metrics.mcp_metrics import MCP_SERVER_SESSION_DURATION
from opentelemetry.semconv.attributes.client_attributes import CLIENT_ADDRESS, CLIENT_PORT
from opentelemetry.semconv.attributes.error_attributes import ERROR_TYPE
from opentelemetry.semconv.attributes.network_attributes import (
    NETWORK_PROTOCOL_NAME,
    NETWORK_PROTOCOL_VERSION,
    NETWORK_TRANSPORT,
)
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from atoms_otel.base import compat
from atoms_otel.base import guard as _guard
from atoms_otel.base.context import CORRELATION_ID_ATTRIBUTE, mcp_tool_call_var, reset_context
from atoms_otel.base.semconv import attribute_value
from atoms_otel.core.telemetry import Telemetry
from atoms_otel.otel.logs import get_logger
from atoms_otel.otel.metrics import BoundInstrument
from atoms_otel.producers.http.state import STATE_KEY
from atoms_otel.producers.instrument.tools import ToolCallRecorder
from atoms_otel.producers.mcp_outcome import (
    MAX_NAME,
    MCP_METHODS,
    OTHER,
    LogFields,
    Outcome,
    ServedCall,
    ToolLabels,
    ToolLister,
    capture_tool_errors,
    client_context,
    exception_outcome,
    result_outcome,
    transport_attributes,
)

__all__ = ["MCP_METHODS", "OTHER", "McpTelemetryMiddleware", "instrument_mcp"]

_INSTALL_HINT: Final = "instrument_mcp() needs the MCP SDK: pip install 'atoms-otel[mcp]'"
_SESSION_HEADER: Final = "mcp-session-id"
_TOOLS_CALL: Final = "tools/call"
_EXECUTE_TOOL: Final = GenAiOperationNameValues.EXECUTE_TOOL.value
_SESSION_STATE: Final = "atoms_otel.session"  # marks a connection whose session is timed
_SESSION_BUCKETS: Final = (1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 14400.0)
_MAX_LABEL_SETS: Final = 512  # bound mcp.server.operation.duration series; past that, built per call
_HTTP_LINK: Final = {"atoms_otel.link": "http.request"}
_logger = get_logger("atoms_otel.mcp")
_LogContext = tuple[str | None, str | None, str | None, str, str | None]  # LogFields.enter's arguments


class _Call:
    """One MCP message being served."""

    __slots__ = ("method", "served", "span", "start", "tool", "transport", "version")

    def __init__(self, method: str, tool: str | None, span: trace.Span, transport: Any, version: Any) -> None:
        self.method = method
        self.tool = tool
        self.span = span
        self.transport: tuple[tuple[str, str], ...] = transport
        self.version = version if isinstance(version, str) else None
        self.served: ServedCall | None = None
        self.start = time.perf_counter()


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
        self._operation_series: dict[tuple[Any, ...], BoundInstrument] = {}
        self._sessions = telemetry.metrics.histogram(
            MCP_SERVER_SESSION_DURATION,
            "MCP session duration in seconds as the server sees it, from initialize to close",
            unit="s",
            labels=(MCP_PROTOCOL_VERSION, NETWORK_TRANSPORT, NETWORK_PROTOCOL_NAME, NETWORK_PROTOCOL_VERSION),
            buckets=_SESSION_BUCKETS,
        )
        self._labels = ToolLabels(list_tools)
        self._log_fields = LogFields()

    async def __call__(self, ctx: Any, call_next: Callable[[Any], Awaitable[Any]]) -> Any:
        try:
            call, log_context, context = await self._start(ctx)
        except Exception as exc:  # never keep the message from its handler
            _guard.report_internal_error("mcp middleware", exc)
            return await call_next(ctx)
        token = otel_context.attach(context)
        served = mcp_tool_call_var.set(call.served)
        logged = self._log_fields.enter(*log_context)
        try:
            try:
                result = await call_next(ctx)
            except BaseException as exc:
                self._finish(call, exception_outcome(exc))
                raise
            outcome = result_outcome(result, call.tool, call.served) if call.method == _TOOLS_CALL else None
            self._finish(call, outcome)
            return result
        finally:
            reset_context(logged)
            mcp_tool_call_var.reset(served)
            otel_context.detach(token)

    async def _start(self, ctx: Any) -> tuple[_Call, _LogContext, otel_context.Context]:
        raw_method = str(ctx.method)
        method = raw_method if raw_method in MCP_METHODS else OTHER
        params = ctx.params
        target = params.get("name") if isinstance(params, Mapping) and method != OTHER else None
        target = target if isinstance(target, str) else None
        if method != _TOOLS_CALL:
            tool, registered = None, True
        elif self._labels.known(target):
            tool, registered = target, True
        else:
            tool, registered = await self._labels.label(target)
        request = getattr(ctx, "request", None)
        scope = getattr(request, "scope", None) if request is not None else None
        state = scope.get(STATE_KEY) if isinstance(scope, Mapping) else None
        connection = compat.mcp_connection(ctx)
        session_id = getattr(connection, "session_id", None) or _header_session(request)
        transport = transport_attributes(scope) if scope is not None else ()
        if method == "initialize" and connection is not None:
            self._track_session(connection, transport, stateful=request is None or session_id is not None)
        log_context = (
            getattr(state, "correlation_id", None) or None,
            session_id,
            scope.get("path") if isinstance(scope, Mapping) else None,
            raw_method[:MAX_NAME],
            target[:MAX_NAME] if tool is not None and target is not None else None,
        )
        parent = client_context(getattr(ctx, "meta", None))
        span = self._span(  # last: nothing after it may fail and leave the span open
            ctx, parent, (raw_method, method, target, tool), (scope, state, session_id, transport)
        )
        call = _Call(method, tool, span, transport, getattr(ctx, "protocol_version", None))
        if tool is not None and target is not None and registered:
            call.served = ServedCall(target)
        return call, log_context, trace.set_span_in_context(span, parent)

    def _span(
        self,
        ctx: Any,
        parent: otel_context.Context | None,
        names: tuple[str, str, str | None, str | None],
        http: tuple[Any, Any, str | None, tuple[tuple[str, str], ...]],
    ) -> trace.Span:
        raw_method, method, target, tool = names
        scope, state, session_id, transport = http
        named = target is not None and len(target) <= MAX_NAME and (tool is None or tool != OTHER)
        attributes: dict[str, Any] = {MCP_METHOD_NAME: raw_method[:MAX_NAME]}
        version, request_id = getattr(ctx, "protocol_version", None), getattr(ctx, "request_id", None)
        if isinstance(version, str):
            attributes[MCP_PROTOCOL_VERSION] = version
        if request_id is not None:
            attributes[JSONRPC_REQUEST_ID] = str(request_id)
        if method == _TOOLS_CALL:
            attributes[GEN_AI_OPERATION_NAME] = _EXECUTE_TOOL
            if target is not None:
                attributes[GEN_AI_TOOL_NAME] = target[:MAX_NAME]
        elif method == "prompts/get" and target is not None:
            attributes[GEN_AI_PROMPT_NAME] = target[:MAX_NAME]
        if session_id:
            attributes[MCP_SESSION_ID] = session_id
        attributes.update(transport)
        links = None
        if scope is not None:
            links = self._http_facts(scope, state, attributes)
        name = f"{method} {target}" if named else method
        span = self.telemetry.tracer.start_span(
            name, parent, kind=SpanKind.SERVER, attributes=attributes, links=links
        )
        if self.record_arguments and tool is not None and span.is_recording():
            self._record_arguments(span, ctx.params)
        return span

    @staticmethod
    def _http_facts(scope: Any, state: Any, attributes: dict[str, Any]) -> list[Link] | None:
        client = scope.get("client")
        if isinstance(client, tuple | list) and len(client) == 2 and client[0]:
            attributes[CLIENT_ADDRESS] = str(client[0])
            if isinstance(client[1], int):
                attributes[CLIENT_PORT] = client[1]
        correlation_id = getattr(state, "correlation_id", None)
        if correlation_id:
            attributes[CORRELATION_ID_ATTRIBUTE] = correlation_id
        http_span = getattr(state, "span", None)
        if http_span is None:
            return None
        http_context = http_span.get_span_context()
        return [Link(http_context, _HTTP_LINK)] if http_context.is_valid else None

    def _record_arguments(self, span: trace.Span, params: Any) -> None:
        try:
            arguments = params.get("arguments") if isinstance(params, Mapping) else None
            if isinstance(arguments, Mapping):
                scrubber = self.telemetry.scrubber
                shown = scrubber.scrub_mapping(arguments) if scrubber is not None else arguments
                span.set_attribute(GEN_AI_TOOL_CALL_ARGUMENTS, attribute_value(dict(shown)))
        except Exception as exc:
            _guard.report_internal_error("mcp span arguments", exc)

    def _finish(self, call: _Call, outcome: Outcome | None) -> None:
        try:
            duration = time.perf_counter() - call.start
            error = outcome.error_type if outcome is not None else None
            code = outcome.code if outcome is not None else None
            span = call.span
            if outcome is not None and span.is_recording():
                self._fail_span(span, outcome)
            self._record_operation(call, error, code, duration)
            span.end()
            if call.tool is None:
                return
            self._tools.record(call.tool, duration, error, "mcp")
            if outcome is not None:
                _logger.warning(
                    "MCP tool %s failed: %s",
                    call.tool,
                    error,
                    extra_fields={
                        "tool": call.tool,
                        "error_type": error,
                        "duration_ms": round(duration * 1e3, 3),
                    },
                    exc_info=outcome.exception,
                )
        except Exception as internal:
            _guard.report_internal_error("mcp metrics", internal)

    def _fail_span(self, span: trace.Span, outcome: Outcome) -> None:
        span.set_attribute(ERROR_TYPE, outcome.error_type)
        if outcome.code is not None:
            span.set_attribute(RPC_RESPONSE_STATUS_CODE, outcome.code)
        if outcome.exception is not None:
            span.record_exception(outcome.exception)  # scrubbed on export, with the stack trace
        scrubber = self.telemetry.scrubber
        description = (
            scrubber.scrub_text(outcome.description) if scrubber is not None else outcome.description
        )
        span.set_status(Status(StatusCode.ERROR, description))

    def _record_operation(self, call: _Call, error: str | None, code: str | None, duration: float) -> None:
        """``mcp.server.operation.duration``, through the series' bound instrument."""
        key = (call.method, call.tool, error, code, call.version, call.transport)
        series = self._operation_series.get(key)
        if series is not None:
            series.record(duration)
            return
        labels = {MCP_METHOD_NAME: call.method}
        if call.tool is not None:
            labels[GEN_AI_TOOL_NAME] = call.tool
            labels[GEN_AI_OPERATION_NAME] = _EXECUTE_TOOL
        if error is not None:
            labels[ERROR_TYPE] = error
        if code is not None:
            labels[RPC_RESPONSE_STATUS_CODE] = code
        if call.version is not None:
            labels[MCP_PROTOCOL_VERSION] = call.version
        labels.update(call.transport)
        if len(self._operation_series) >= _MAX_LABEL_SETS:
            self._operations.observe(duration, labels)
            return
        series = self._operation_series[key] = self._operations.bind(labels)
        series.record(duration)

    def _track_session(
        self, connection: Any, transport: tuple[tuple[str, str], ...], *, stateful: bool
    ) -> None:
        """Time the session ``initialize`` opens, until its connection closes (stateless HTTP has
        no session: each request is its own connection)."""
        state = connection.state
        if not stateful or not isinstance(state, dict) or _SESSION_STATE in state:
            return
        state[_SESSION_STATE] = True
        connection.exit_stack.callback(self._end_session, connection, transport, time.perf_counter())

    def _end_session(self, connection: Any, transport: tuple[tuple[str, str], ...], start: float) -> None:
        try:
            labels = dict(transport)
            version = getattr(connection, "protocol_version", None)
            if isinstance(version, str):
                labels[MCP_PROTOCOL_VERSION] = version
            self._sessions.observe(time.perf_counter() - start, labels)
        except Exception as exc:
            _guard.report_internal_error("mcp session duration", exc)


def _header_session(request: Any) -> str | None:
    headers = getattr(request, "headers", None) if request is not None else None
    value = headers.get(_SESSION_HEADER) if headers is not None else None
    return value if isinstance(value, str) and value else None


def instrument_mcp(server: Any, *, telemetry: Telemetry, record_arguments: bool = False) -> Any:
    """Observe every request ``server`` (an ``MCPServer``, or a low-level ``Server``) handles.

    Labels are bounded whatever the client sends: ``tool`` / ``gen_ai.tool.name`` is a tool the
    server has registered (read through ``MCPServer.list_tools()``), ``mcp.method.name`` a method of
    the MCP spec (:data:`MCP_METHODS`); anything else is ``_OTHER``. A server without
    ``list_tools()`` labels the first 100 tool names of at most 128 characters, then ``_OTHER``.

    Our middleware replaces the SDK's OpenTelemetry middleware (one span per message, not two);
    without it, ours goes first. Idempotent: a second call changes nothing.
    ``record_arguments=True`` puts each tool call's arguments on the span as
    ``gen_ai.tool.call.arguments``, scrubbed of secret-looking keys. Returns ``server``.
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
    if any(getattr(m, "atoms_otel", False) for m in chain):
        return server
    lister = getattr(server, "list_tools", None)  # MCPServer's public registry of its tools
    ours = McpTelemetryMiddleware(
        telemetry=telemetry,
        record_arguments=record_arguments,
        list_tools=lister if inspect.iscoroutinefunction(lister) else None,
    )
    sdk = next((i for i, m in enumerate(chain) if _is_sdk_otel(m)), None)
    if sdk is None:
        chain.insert(0, ours)
    else:
        chain[sdk] = ours
    call_tool = getattr(server, "call_tool", None)
    if inspect.iscoroutinefunction(call_tool) and not getattr(call_tool, "atoms_otel", False):
        server.call_tool = capture_tool_errors(call_tool)
    return server


def _is_sdk_otel(middleware: Any) -> bool:
    """The SDK's own span middleware (mcp 2.3: ``mcp.server._otel.OpenTelemetryMiddleware``)."""
    cls = type(middleware)
    return cls.__name__ == "OpenTelemetryMiddleware" and cls.__module__.startswith("mcp.")
