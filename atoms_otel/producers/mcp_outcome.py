"""What an MCP request was, in bounded labels, and how it ended, in ``error.type`` terms; plus the
client's trace context from ``params._meta``, the capture of a tool's exception, and the log
context the middleware sets around each handler.

Shared by the MCP middleware (:mod:`atoms_otel.producers.mcp`) for the span and the metrics, so
that ``error.type`` is the same value on both. The values (README "MCP"):

- a JSON-RPC error (``MCPError`` raised by a tool or the SDK): its code, e.g. ``-32602``, also
  ``rpc.response.status_code``; malformed params (a pydantic ``ValidationError``): ``-32602``;
- a ``tools/call`` answered with an error result: ``unknown_tool`` (no such tool on the server),
  ``invalid_arguments`` (the SDK rejected the arguments before the tool ran), else ``tool_error``
  (the tool raised, or returned an error result) — the MCP semantic conventions' value;
- anything else that escaped the handler: its module-qualified class name.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, Final

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.semconv.attributes.network_attributes import (
    NETWORK_PROTOCOL_NAME,
    NETWORK_PROTOCOL_VERSION,
    NETWORK_TRANSPORT,
    NetworkTransportValues,
)
from pydantic import ValidationError

from atoms_otel.base import guard as _guard
from atoms_otel.base.context import ContextTokens, McpToolCall, mcp_tool_call_var, set_context
from atoms_otel.base.semconv import exception_type

__all__ = [
    "MCP_METHODS",
    "OTHER",
    "LogFields",
    "Outcome",
    "ServedCall",
    "ToolLabels",
    "ToolLister",
    "capture_tool_errors",
    "client_context",
    "exception_outcome",
    "result_outcome",
    "transport_attributes",
]

OTHER: Final = "_OTHER"
"""The label value of a tool the server does not have, or of a method the MCP spec does not define."""
MCP_METHODS: Final = frozenset(
    {
        "initialize", "ping", "tools/list", "tools/call", "resources/list", "resources/templates/list",
        "resources/read", "resources/subscribe", "resources/unsubscribe", "prompts/list", "prompts/get",
        "completion/complete", "logging/setLevel", "sampling/createMessage", "elicitation/create",
        "roots/list", "tasks/get", "tasks/result", "tasks/list", "tasks/cancel", "server/discover",
        "subscriptions/listen",
        "notifications/initialized", "notifications/cancelled", "notifications/progress",
        "notifications/message", "notifications/resources/updated", "notifications/resources/list_changed",
        "notifications/tools/list_changed", "notifications/prompts/list_changed",
        "notifications/roots/list_changed", "notifications/elicitation/complete",
        "notifications/tasks/status",
    }
)  # fmt: skip
"""The methods the MCP specification defines (2025-11-25 and 2026-07-28): the only method labels."""
MAX_NAME: Final = 128  # the MCP spec's limit on a tool name; longer is never a label
_UNLISTED_LIMIT: Final = 100  # a server that cannot list its tools: first names seen, then _OTHER
_MAX_DESCRIPTION: Final = 256
_MAX_FIELD_SETS: Final = 512  # cached mcp_method/tool field dicts; past that, built per message
INVALID_PARAMS: Final = "-32602"  # JSON-RPC "Invalid params"
ToolLister = Callable[[], Awaitable[Iterable[Any]]]


class ToolLabels:
    """Which tool names may be labels: those the server has registered (its public ``list_tools()``,
    re-read when an unknown name arrives, so tools added later are labelled too)."""

    def __init__(self, lister: ToolLister | None) -> None:
        self._lister = lister
        self._known: frozenset[str] = frozenset()

    def known(self, name: str | None) -> bool:
        """``name`` is a registered tool already seen: its label is itself (no await needed)."""
        return name in self._known

    async def label(self, name: str | None) -> tuple[str, bool]:
        """The label for ``name`` and whether the server has such a tool."""
        if name is None or len(name) > MAX_NAME:
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


class ServedCall(McpToolCall):
    """The ``tools/call`` being served; ``error`` is what the tool raised (the SDK turns it into an
    error result, so the middleware would not see it otherwise)."""

    __slots__ = ("error",)

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.error: BaseException | None = None


class Outcome:
    """How a request failed: ``error.type``, the JSON-RPC code if any, the span status
    description, and the exception to record on the span as an event."""

    __slots__ = ("code", "description", "error_type", "exception")

    def __init__(
        self, error_type: str, code: str | None, description: str, exception: BaseException | None
    ) -> None:
        self.error_type = error_type
        self.code = code
        self.description = description[:_MAX_DESCRIPTION]
        self.exception = exception


def exception_outcome(exc: BaseException) -> Outcome:
    """A protocol error is named by its JSON-RPC code, as the SDK answers it; others by class."""
    error = getattr(exc, "error", None)
    code = getattr(error, "code", None)
    if isinstance(code, int):
        message = getattr(error, "message", None)
        return Outcome(str(code), str(code), message if isinstance(message, str) else str(code), None)
    if isinstance(exc, ValidationError):  # malformed params: the SDK answers Invalid params
        return Outcome(INVALID_PARAMS, INVALID_PARAMS, "Invalid request parameters", None)
    name = exception_type(exc)
    return Outcome(name, None, f"{name}: {exc}", exc)


def result_outcome(result: Any, tool: str | None, served: ServedCall | None) -> Outcome | None:
    """The outcome of a ``tools/call`` that returned: ``None`` unless it is an error result."""
    failed = getattr(result, "is_error", False) is True or (
        isinstance(result, Mapping) and result.get("isError") is True
    )
    if not failed:
        return None
    if served is None:
        return Outcome("unknown_tool", None, "Unknown tool", None)
    raised = served.error
    cause = raised.__cause__ if raised is not None else None
    # mcp 2.3: arguments failing the input schema raise ToolError from the ValidationError; a
    # ValidationError inside the tool's body is a crash (UnexpectedToolError) instead.
    rejected = (
        isinstance(cause, ValidationError) and type(raised).__name__ != "UnexpectedToolError"
        if raised is not None
        else tool is not None and _rejected_arguments(result, tool)
    )
    if rejected:
        return Outcome("invalid_arguments", None, "Invalid arguments", None)
    original = cause if cause is not None else raised
    if original is None:
        return Outcome("tool_error", None, "The tool returned an error result", None)
    return Outcome("tool_error", None, f"{exception_type(original)}: {original}", original)


# When the tool's exception was not captured: mcp 2.3's Tool.run documents its message,
# "Error executing tool <name>: <the ValidationError>"; pydantic's text starts
# "<n> validation error(s) for <model>".
_VALIDATION: Final = re.compile(r"\d+ validation errors? for ")


def _rejected_arguments(result: Any, tool: str) -> bool:
    content = result.get("content") if isinstance(result, Mapping) else getattr(result, "content", None)
    first = content[0] if isinstance(content, list) and content else None
    text = first.get("text") if isinstance(first, Mapping) else getattr(first, "text", None)
    prefix = f"Error executing tool {tool}: "
    return isinstance(text, str) and text.startswith(prefix) and bool(_VALIDATION.match(text, len(prefix)))


_TCP: Final = NetworkTransportValues.TCP.value
_UNIX: Final = NetworkTransportValues.UNIX.value


def transport_attributes(scope: Any) -> tuple[tuple[str, str], ...]:
    """``network.*`` for a message that came over HTTP (the ASGI scope): ``tcp`` (``unix`` for a
    Unix socket server), ``http`` and its version. Empty for stdio and in-process transports,
    which the SDK does not tell apart."""
    if not isinstance(scope, Mapping) or scope.get("type") != "http":
        return ()
    server = scope.get("server")
    transport = _UNIX if isinstance(server, tuple | list) and len(server) == 2 and server[1] is None else _TCP
    version = scope.get("http_version")
    facts = ((NETWORK_TRANSPORT, transport), (NETWORK_PROTOCOL_NAME, "http"))
    return facts + (((NETWORK_PROTOCOL_VERSION, version),) if isinstance(version, str) else ())


def client_context(meta: Any) -> otel_context.Context | None:
    """The client's trace context from ``params._meta`` (the MCP conventions' carrier), if any."""
    if not isinstance(meta, Mapping) or "traceparent" not in meta:
        return None
    try:
        parent = propagate.extract(meta)
    except (TypeError, ValueError):
        return None
    return parent if trace.get_current_span(parent).get_span_context().is_valid else None


def capture_tool_errors(call_tool: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """``MCPServer.call_tool``, also noting what the tool raised for the middleware's span: the
    SDK's handler turns the exception into an error result (mcp 2.3 routes every ``tools/call``
    through ``self.call_tool``; otherwise the span still gets ``error.type``, without the event)."""

    @functools.wraps(call_tool)
    async def call(name: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return await call_tool(name, *args, **kwargs)
        except Exception as exc:
            served = mcp_tool_call_var.get()
            if isinstance(served, ServedCall) and served.error is None and served.name == name:
                served.error = exc
            raise

    call.atoms_otel = True  # type: ignore[attr-defined]
    return call


class LogFields:
    """The log context of one MCP message, set as ``LogContext`` would set it (the values given
    win, ``None`` keeps the outer one, extra fields merge over the outer ones; all restored after)
    but without building one per message: the ``mcp_method`` / ``tool`` fields of each pair are
    one shared dict (never mutated; at most 512 pairs, past that built per message)."""

    def __init__(self) -> None:
        self._fields: dict[tuple[str, str | None], dict[str, str]] = {}

    def enter(
        self,
        correlation_id: str | None,
        session_id: str | None,
        request_path: str | None,
        method: str,
        tool: str | None,
    ) -> ContextTokens:
        key = (method, tool)
        fields = self._fields.get(key)
        if fields is None:
            fields = {"mcp_method": method} if tool is None else {"mcp_method": method, "tool": tool}
            if len(self._fields) < _MAX_FIELD_SETS:
                self._fields[key] = fields
        values = {"correlation_id": correlation_id, "session_id": session_id, "request_path": request_path}
        return set_context(values, fields)
