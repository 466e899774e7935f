"""``observe_tool`` and the one tool-call recorder it shares with the MCP integration."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Final, TypeVar

from opentelemetry.semconv._incubating.attributes.gen_ai_attributes import (
    GEN_AI_OPERATION_NAME,
    GEN_AI_TOOL_CALL_ARGUMENTS,
    GEN_AI_TOOL_CALL_RESULT,
    GEN_AI_TOOL_NAME,
    GenAiOperationNameValues,
)
from opentelemetry.trace import SpanKind

from atoms_otel.base import guard as _guard
from atoms_otel.base.context import mcp_tool_call_var
from atoms_otel.base.semconv import attribute_value, exception_type
from atoms_otel.core.telemetry import Telemetry
from atoms_otel.otel.logs import get_logger
from atoms_otel.otel.metrics import MetricsRegistry
from atoms_otel.producers.instrument.values import Arguments, SpanCall, fail_span, scrubbed
from atoms_otel.producers.instrument.wrapping import wrap, yielded_items

__all__ = ["ToolCallRecorder", "observe_tool"]

F = TypeVar("F", bound=Callable[..., Any])

_logger = get_logger("atoms_otel.tools")
_EXECUTE_TOOL: Final = GenAiOperationNameValues.EXECUTE_TOOL.value


class ToolCallRecorder:
    """One tool call in ``tool_executions_total{tool,status}``,
    ``tool_execution_duration_seconds{tool,status}`` and, when it failed,
    ``errors_total{error_type,source}`` — the same for ``@observe_tool`` and MCP ``tools/call``.

    The metric children of each tool are bound once (at most 512 tools; past that, per call)."""

    __slots__ = ("_bound", "_durations", "_errors", "_executions")

    def __init__(self, metrics: MetricsRegistry) -> None:
        self._executions = metrics.tool_executions_total
        self._durations = metrics.tool_execution_duration_seconds
        self._errors = metrics.errors_total
        self._bound: dict[str, _ToolChildren] = {}

    def bound(self, tool: str) -> _ToolChildren:
        """The children of ``tool``'s success and error series."""
        children = self._bound.get(tool)
        if children is None:
            children = _ToolChildren(self._executions, self._durations, tool)
            if len(self._bound) < _MAX_BOUND_TOOLS:
                self._bound[tool] = children
        return children

    def record(self, tool: str, duration_s: float | None, error_type: str | None, source: str) -> None:
        """``duration_s`` ``None``: count only; ``error_type`` ``None``: a success."""
        children = self._bound.get(tool) or self.bound(tool)
        if error_type is None:
            children.ok_count.inc()
            if duration_s is not None:
                children.ok_duration.observe(duration_s)
            return
        children.error_count.inc()
        if duration_s is not None:
            children.error_duration.observe(duration_s)
        self._errors.labels(error_type, source).inc()


_MAX_BOUND_TOOLS: Final = 512


class _ToolChildren:
    __slots__ = ("error_count", "error_duration", "ok_count", "ok_duration")

    def __init__(self, executions: Any, durations: Any, tool: str) -> None:
        self.ok_count = executions.labels(tool, "success")
        self.ok_duration = durations.labels(tool, "success")
        self.error_count = executions.labels(tool, "error")
        self.error_duration = durations.labels(tool, "error")


class _ToolCall(SpanCall):
    """A call of a decorated tool; ``counted`` False when an MCP server counts it instead."""

    __slots__ = ("counted",)

    def __init__(self, span: Any, start: float, inputs: dict[str, Any] | None, counted: bool) -> None:
        super().__init__(span, start, inputs)
        self.counted = counted


def _counted_by_mcp(name: str) -> bool:
    """True when this call is the MCP ``tools/call`` of the same name, which the MCP middleware
    counts, times and logs: the decorator then records only its span (claimed once per call)."""
    served = mcp_tool_call_var.get()
    if served is None or served.claimed or served.name != name:
        return False
    served.claimed = True
    return True


class _ToolProbe:
    def __init__(
        self,
        telemetry: Telemetry,
        name: str,
        fn: Callable[..., Any],
        options: tuple[bool, bool, bool],
    ) -> None:
        self.telemetry = telemetry
        self.name = name
        self.track_performance, self.log_inputs, self.log_outputs = options
        self.logs = self.log_inputs or self.log_outputs
        self.recorder = ToolCallRecorder(telemetry.metrics)
        self.children = self.recorder.bound(name)  # bound once: the hot path pays no label lookup
        self.arguments = Arguments(fn, lambda: telemetry.scrubber) if self.log_inputs else None
        self.span_name = f"{_EXECUTE_TOOL} {name}"
        self.attributes = {GEN_AI_OPERATION_NAME: _EXECUTE_TOOL, GEN_AI_TOOL_NAME: name}

    def start(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> _ToolCall:
        span = self.telemetry.tracer.start_span(
            self.span_name, kind=SpanKind.INTERNAL, attributes=self.attributes
        )
        inputs = None
        if self.arguments is not None:
            try:
                inputs = self.arguments(args, kwargs)
                if span.is_recording():
                    span.set_attribute(GEN_AI_TOOL_CALL_ARGUMENTS, attribute_value(inputs))
            except Exception as exc:
                _guard.report_internal_error("observe_tool inputs", exc)
        counted = mcp_tool_call_var.get() is None or not _counted_by_mcp(self.name)
        return _ToolCall(span, time.perf_counter(), inputs, counted)

    def _fields(self, call: SpanCall, status: str, duration: float) -> dict[str, Any]:
        fields: dict[str, Any] = {"tool": self.name, "status": status}
        if self.track_performance:
            fields["duration_ms"] = round(duration * 1000.0, 3)
        if call.inputs is not None:
            fields["inputs"] = call.inputs
        return fields

    def done(self, call: _ToolCall, result: Any) -> None:
        try:
            duration = time.perf_counter() - call.start
            if call.counted:
                self.children.ok_count.inc()
                if self.track_performance:
                    self.children.ok_duration.observe(duration)
            if self.logs:
                self._log_success(call, result, duration)
            call.span.end()
        except Exception as exc:
            _guard.report_internal_error("observe_tool", exc)

    def _log_success(self, call: _ToolCall, result: Any, duration: float) -> None:
        fields = self._fields(call, "success", duration)
        if self.log_outputs:
            items = yielded_items(result)
            output = (
                scrubbed(self.telemetry.scrubber, "output", result) if items is None else {"items": items}
            )
            fields["output"] = output
            if call.span.is_recording():
                call.span.set_attribute(GEN_AI_TOOL_CALL_RESULT, attribute_value(output))
        _logger.info("tool %s completed", self.name, extra_fields=fields)

    def fail(self, call: _ToolCall, exc: BaseException) -> None:
        try:
            error_type = exception_type(exc)
            duration = time.perf_counter() - call.start
            if call.counted:
                timed = duration if self.track_performance else None
                self.recorder.record(self.name, timed, error_type, "tool")
                fields = {**self._fields(call, "error", duration), "error_type": error_type}
                _logger.error("tool %s failed: %s", self.name, error_type, exc_info=exc, extra_fields=fields)
            fail_span(call.span, exc, error_type)
        except Exception as internal:
            _guard.report_internal_error("observe_tool", internal)


def observe_tool(
    name: str,
    track_performance: bool = True,
    log_inputs: bool = False,
    log_outputs: bool = False,
    *,
    telemetry: Telemetry,
) -> Callable[[F], F]:
    """Observe every call of a tool.

    Records a span ``execute_tool {name}`` (``gen_ai.operation.name=execute_tool``,
    ``gen_ai.tool.name``), ``tool_executions_total{tool,status}`` with ``status`` ``success`` or
    ``error``, and — when ``track_performance`` — ``tool_execution_duration_seconds{tool,status}``.
    A failure also counts in ``errors_total{error_type,source="tool"}`` and logs one ERROR line
    with the structured exception; the exception is re-raised unchanged.

    Served as the MCP tool of the same ``name`` by a server under ``instrument_mcp``, the MCP
    middleware counts, times and logs the call; the decorator then records only its span, so one
    call is one count, one duration and one failure line either way.

    ``log_inputs`` / ``log_outputs`` log the bound arguments and the result on one INFO line and
    set ``gen_ai.tool.call.arguments`` / ``gen_ai.tool.call.result`` on the span — scrubbed of
    secret-looking keys and bounded in size. For a generator the output is its item count.
    """

    def decorate(fn: F) -> F:
        return wrap(fn, _ToolProbe(telemetry, name, fn, (track_performance, log_inputs, log_outputs)))

    return decorate
