"""Decorators that observe tools, operations and database calls.

Each works on sync functions, ``async`` functions, generators and async generators; keeps the
function's name, docstring, signature and kind; and re-raises the function's exception unchanged
after recording it. They may decorate functions at import time, before ``configure()``: they
record once it has run.

>>> @observe_tool("create_user", track_performance=True)
... async def create_user(username: str) -> dict: ...

Inputs and outputs are recorded only when asked (``log_inputs=True`` / ``log_outputs=True``), and
then always scrubbed of secret-looking keys and bounded in size (see :func:`_bounded`).
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, Final, TypeVar

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import SpanKind, Status, StatusCode

from atoms_otel.base import guard as _guard

from atoms_otel.otel import proxy as _proxy

from atoms_otel.base import scrubbing
from atoms_otel.base.semconv import exception_type
from atoms_otel._version import __version__
from atoms_otel.producers.wrapping import wrap, yielded_items
from atoms_otel.base.context import LogContext
from atoms_otel.otel.logs import get_logger
from atoms_otel.otel.metrics import get_metrics_registry
from atoms_otel.otel.processors import attribute_value

__all__ = ["log_operation", "measure_performance", "observe_tool", "track_database_operation"]

F = TypeVar("F", bound=Callable[..., Any])

_tracer = _proxy.TRACER_PROVIDER.get_tracer("atoms_otel", __version__)
_registry = get_metrics_registry()
_logger = get_logger("atoms_otel.tools")
# Counters are recorded without a trace context: exemplars (measurement → trace links) cost
# ~3.5 µs each and belong on the duration histograms, which keep them.
_NO_TRACE: Final = otel_context.set_value("atoms_otel.no_exemplar", True, Context())

_MAX_TEXT: Final = 1024
_MAX_ITEMS: Final = 50
_MAX_DEPTH: Final = 4


def _bounded(value: Any, depth: int = 0) -> Any:
    """A loggable copy of ``value``: strings cut at 1 KiB, containers at 50 items, 4 levels deep;
    anything else by its ``repr`` (cut too). Secrets are removed afterwards by the scrubber."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return value if len(value) <= _MAX_TEXT else value[:_MAX_TEXT] + "…"
    if depth >= _MAX_DEPTH:
        return _bounded(repr(value), depth)
    if isinstance(value, Mapping):
        items = list(value.items())[:_MAX_ITEMS]
        return {str(k): _bounded(v, depth + 1) for k, v in items}
    if isinstance(value, list | tuple | set | frozenset):
        return [_bounded(v, depth + 1) for v in list(value)[:_MAX_ITEMS]]
    return _bounded(repr(value), depth)


def _scrubbed(key: str, value: Any) -> Any:
    scrubber = scrubbing.active_scrubber()
    bounded = _bounded(value)
    return scrubber.scrub_value(key, bounded) if scrubber is not None else bounded


class _Arguments:
    """Binds call arguments to parameter names, for ``log_inputs``."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        try:
            self._signature: inspect.Signature | None = inspect.signature(fn)
        except (TypeError, ValueError):  # builtins without a signature
            self._signature = None

    def __call__(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        if self._signature is not None:
            try:
                bound = self._signature.bind_partial(*args, **kwargs)
                return {k: _scrubbed(k, v) for k, v in bound.arguments.items()}
            except TypeError:
                pass
        return {"args": _scrubbed("args", list(args)), **{k: _scrubbed(k, v) for k, v in kwargs.items()}}


def _duration_ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000.0, 3)


class _SpanCall:
    __slots__ = ("context", "inputs", "span", "start")

    def __init__(self, span: trace.Span, start: float, inputs: dict[str, Any] | None) -> None:
        self.span = span
        self.context: Context | None = trace.set_span_in_context(span)
        self.start = start
        self.inputs = inputs


def _fail_span(span: trace.Span, exc: BaseException, error_type: str) -> None:
    if span.is_recording():
        span.record_exception(exc)
        span.set_attribute("error.type", error_type)
        span.set_status(Status(StatusCode.ERROR, error_type))
    span.end()


# ------------------------------------------------------------------------------------------------
# observe_tool


class _ToolProbe:
    def __init__(
        self, name: str, fn: Callable[..., Any], track_performance: bool, log_inputs: bool, log_outputs: bool
    ) -> None:
        self.name = name
        self.track_performance = track_performance
        self.log_inputs = log_inputs
        self.log_outputs = log_outputs
        self.arguments = _Arguments(fn) if log_inputs else None
        self.span_name = f"execute_tool {name}"
        self.attributes = {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": name}
        self.ok_labels = {"tool": name, "status": "success"}
        self.error_labels = {"tool": name, "status": "error"}

    def start(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> _SpanCall:
        span = _tracer.start_span(self.span_name, kind=SpanKind.INTERNAL, attributes=self.attributes)
        inputs = None
        if self.arguments is not None:
            try:
                inputs = self.arguments(args, kwargs)
                if span.is_recording():
                    span.set_attribute("gen_ai.tool.call.arguments", attribute_value(inputs))
            except Exception as exc:
                _guard.report_internal_error("observe_tool inputs", exc)
        return _SpanCall(span, time.perf_counter(), inputs)

    def _record(self, call: _SpanCall, labels: dict[str, str]) -> float:
        duration = time.perf_counter() - call.start
        _registry.tool_executions_total._instrument._real.add(1, labels, _NO_TRACE)
        if self.track_performance:
            _registry.tool_execution_duration_seconds._instrument._real.record(duration, labels)
        return duration

    def done(self, call: _SpanCall, result: Any) -> None:
        try:
            duration = self._record(call, self.ok_labels)
            fields: dict[str, Any] | None = None
            if self.log_inputs or self.log_outputs:
                fields = {"tool": self.name, "status": "success"}
                if self.track_performance:
                    fields["duration_ms"] = round(duration * 1000.0, 3)
                if call.inputs is not None:
                    fields["inputs"] = call.inputs
                if self.log_outputs:
                    items = yielded_items(result)
                    output = _scrubbed("output", result) if items is None else {"items": items}
                    fields["output"] = output
                    if call.span.is_recording():
                        call.span.set_attribute("gen_ai.tool.call.result", attribute_value(output))
                _logger.info("tool %s completed", self.name, extra_fields=fields)
            call.span.end()
        except Exception as exc:
            _guard.report_internal_error("observe_tool", exc)

    def fail(self, call: _SpanCall, exc: BaseException) -> None:
        try:
            error_type = exception_type(exc)
            duration = self._record(call, self.error_labels)
            _registry.errors_total._instrument._real.add(
                1, {"error_type": error_type, "source": "tool"}, _NO_TRACE
            )
            fields: dict[str, Any] = {"tool": self.name, "status": "error", "error_type": error_type}
            if self.track_performance:
                fields["duration_ms"] = round(duration * 1000.0, 3)
            if call.inputs is not None:
                fields["inputs"] = call.inputs
            _logger.error("tool %s failed: %s", self.name, error_type, exc_info=exc, extra_fields=fields)
            _fail_span(call.span, exc, error_type)
        except Exception as internal:
            _guard.report_internal_error("observe_tool", internal)


def observe_tool(
    name: str, track_performance: bool = True, log_inputs: bool = False, log_outputs: bool = False
) -> Callable[[F], F]:
    """Observe every call of a tool.

    Records a span ``execute_tool {name}`` (``gen_ai.operation.name=execute_tool``,
    ``gen_ai.tool.name``), ``tool_executions_total{tool,status}`` with ``status`` ``success`` or
    ``error``, and — when ``track_performance`` — ``tool_execution_duration_seconds{tool,status}``.
    A failure also counts in ``errors_total{error_type,source="tool"}`` and logs one ERROR line
    with the structured exception; the exception is re-raised unchanged.

    ``log_inputs`` / ``log_outputs`` log the bound arguments and the result on one INFO line and
    set ``gen_ai.tool.call.arguments`` / ``gen_ai.tool.call.result`` on the span — scrubbed of
    secret-looking keys and bounded in size. For a generator the output is its item count.
    """

    def decorate(fn: F) -> F:
        return wrap(fn, _ToolProbe(name, fn, track_performance, log_inputs, log_outputs))

    return decorate


# ------------------------------------------------------------------------------------------------
# log_operation


class _OperationCall:
    __slots__ = ("context", "inputs", "log_context", "start")

    def __init__(self, start: float, inputs: dict[str, Any] | None, log_context: LogContext | None) -> None:
        self.context: Context | None = None
        self.start = start
        self.inputs = inputs
        self.log_context = log_context


def _level(log_level: str | int) -> int:
    if isinstance(log_level, int) and not isinstance(log_level, bool):
        return log_level
    number = logging.getLevelName(str(log_level).upper())
    if not isinstance(number, int):
        raise ValueError(f"log_level must be DEBUG, INFO, WARNING, ERROR or CRITICAL, got {log_level!r}")
    return number


class _OperationProbe:
    def __init__(
        self, name: str, fn: Callable[..., Any], level: int, log_inputs: bool, log_outputs: bool
    ) -> None:
        self.name = name
        self.level = level
        self.log_outputs = log_outputs
        self.arguments = _Arguments(fn) if log_inputs else None
        # A generator's caller runs between its items: it must not inherit operation=<name>.
        self.scoped = not (inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn))

    def start(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> _OperationCall:
        inputs = None
        try:
            if self.arguments is not None:
                inputs = self.arguments(args, kwargs)
            if _logger.is_enabled_for(self.level):
                _logger.log(
                    self.level,
                    "operation %s started",
                    self.name,
                    extra_fields={
                        "operation": self.name,
                        **({"inputs": inputs} if inputs is not None else {}),
                    },
                )
        except Exception as exc:
            _guard.report_internal_error("log_operation", exc)
        log_context = None
        if self.scoped:  # lines logged inside the operation carry operation=<name>
            log_context = LogContext(operation=self.name)
            log_context.__enter__()
        return _OperationCall(time.perf_counter(), inputs, log_context)

    def done(self, call: _OperationCall, result: Any) -> None:
        if call.log_context is not None:
            call.log_context.__exit__(None, None, None)
        try:
            if _logger.is_enabled_for(self.level):
                fields: dict[str, Any] = {
                    "operation": self.name,
                    "status": "success",
                    "duration_ms": _duration_ms(call.start),
                }
                if self.log_outputs:
                    items = yielded_items(result)
                    fields["output"] = _scrubbed("output", result) if items is None else {"items": items}
                _logger.log(self.level, "operation %s completed", self.name, extra_fields=fields)
        except Exception as exc:
            _guard.report_internal_error("log_operation", exc)

    def fail(self, call: _OperationCall, exc: BaseException) -> None:
        if call.log_context is not None:
            call.log_context.__exit__(None, None, None)
        try:
            error_type = exception_type(exc)
            _logger.error(
                "operation %s failed: %s",
                self.name,
                error_type,
                exc_info=exc,
                extra_fields={
                    "operation": self.name,
                    "status": "error",
                    "error_type": error_type,
                    "duration_ms": _duration_ms(call.start),
                    **({"inputs": call.inputs} if call.inputs is not None else {}),
                },
            )
        except Exception as internal:
            _guard.report_internal_error("log_operation", internal)


def log_operation(
    name: str, log_level: str | int = "INFO", log_inputs: bool = False, log_outputs: bool = False
) -> Callable[[F], F]:
    """Log the start and end of an operation at ``log_level``, with its duration.

    Lines logged inside the operation carry ``operation=<name>``. A failure logs one ERROR line
    with the structured exception, which is re-raised unchanged. ``log_inputs`` adds the bound
    arguments to the start line, ``log_outputs`` the result to the end line — both scrubbed.
    """
    level = _level(log_level)

    def decorate(fn: F) -> F:
        return wrap(fn, _OperationProbe(name, fn, level, log_inputs, log_outputs))

    return decorate


# ------------------------------------------------------------------------------------------------
# measure_performance


class _TimedCall:
    __slots__ = ("context", "start")

    def __init__(self, start: float) -> None:
        self.context: Context | None = None
        self.start = start


class _PerformanceProbe:
    def __init__(self, name: str, warning_ms: float | None, critical_ms: float | None) -> None:
        self.name = name
        self.warning_ms = warning_ms
        self.critical_ms = critical_ms
        self.histogram = get_metrics_registry().histogram(
            "operation.duration",
            "Duration of measured operations in seconds, by operation and status",
            unit="s",
            labels=("operation", "status"),
        )
        self.ok_labels = {"operation": name, "status": "success"}
        self.error_labels = {"operation": name, "status": "error"}

    def start(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> _TimedCall:
        return _TimedCall(time.perf_counter())

    def _finish(self, call: _TimedCall, labels: dict[str, str], error_type: str | None) -> None:
        duration = time.perf_counter() - call.start
        self.histogram._instrument._real.record(duration, labels)
        duration_ms = duration * 1000.0
        if self.critical_ms is not None and duration_ms > self.critical_ms:
            level, threshold, verdict = logging.ERROR, self.critical_ms, "critical"
        elif self.warning_ms is not None and duration_ms > self.warning_ms:
            level, threshold, verdict = logging.WARNING, self.warning_ms, "warning"
        else:
            if _logger.is_enabled_for(logging.DEBUG):
                _logger.debug("%s took %.1f ms", self.name, duration_ms, operation=self.name)
            return
        _logger.log(
            level,
            "%s took %.1f ms, over the %s threshold of %g ms",
            self.name,
            duration_ms,
            verdict,
            threshold,
            extra_fields={
                "operation": self.name,
                "duration_ms": round(duration_ms, 3),
                "threshold_ms": threshold,
                "status": labels["status"],
                **({"error_type": error_type} if error_type else {}),
            },
        )

    def done(self, call: _TimedCall, result: Any) -> None:
        try:
            self._finish(call, self.ok_labels, None)
        except Exception as exc:
            _guard.report_internal_error("measure_performance", exc)

    def fail(self, call: _TimedCall, exc: BaseException) -> None:
        try:
            self._finish(call, self.error_labels, exception_type(exc))
        except Exception as internal:
            _guard.report_internal_error("measure_performance", internal)


def measure_performance(
    name: str, threshold_warning_ms: float | None = None, threshold_critical_ms: float | None = None
) -> Callable[[F], F]:
    """Time every call into ``operation_duration_seconds{operation,status}``.

    A call slower than ``threshold_warning_ms`` logs a WARNING line, slower than
    ``threshold_critical_ms`` an ERROR line (each with ``duration_ms`` and ``threshold_ms``);
    other calls log at DEBUG. Exceptions are timed (``status="error"``) and re-raised unchanged.
    """
    for label, value in (
        ("threshold_warning_ms", threshold_warning_ms),
        ("threshold_critical_ms", threshold_critical_ms),
    ):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float) or value < 0):
            raise ValueError(f"{label} must be a number >= 0, got {value!r}")

    def decorate(fn: F) -> F:
        return wrap(fn, _PerformanceProbe(name, threshold_warning_ms, threshold_critical_ms))

    return decorate


# ------------------------------------------------------------------------------------------------
# track_database_operation


class _DatabaseProbe:
    def __init__(self, operation: str, table: str, system: str) -> None:
        self.operation = operation
        self.table = table
        self.span_name = f"{operation} {table}" if table else operation
        self.attributes = {"db.system.name": system, "db.operation.name": operation}
        if table:
            self.attributes["db.collection.name"] = table
        self.ok_labels = {"operation": operation, "table": table, "status": "success"}
        self.error_labels = {"operation": operation, "table": table, "status": "error"}
        self.duration_labels = {"operation": operation, "table": table}

    def start(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> _SpanCall:
        span = _tracer.start_span(self.span_name, kind=SpanKind.CLIENT, attributes=self.attributes)
        return _SpanCall(span, time.perf_counter(), None)

    def _record(self, call: _SpanCall, labels: dict[str, str]) -> None:
        duration = time.perf_counter() - call.start
        _registry.database_queries_total._instrument._real.add(1, labels, _NO_TRACE)
        _registry.database_query_duration_seconds._instrument._real.record(duration, self.duration_labels)

    def done(self, call: _SpanCall, result: Any) -> None:
        try:
            self._record(call, self.ok_labels)
            call.span.end()
        except Exception as exc:
            _guard.report_internal_error("track_database_operation", exc)

    def fail(self, call: _SpanCall, exc: BaseException) -> None:
        try:
            error_type = exception_type(exc)
            self._record(call, self.error_labels)
            _registry.errors_total._instrument._real.add(
                1, {"error_type": error_type, "source": "database"}, _NO_TRACE
            )
            _logger.error(
                "database %s failed: %s",
                self.span_name,
                error_type,
                exc_info=exc,
                extra_fields={"operation": self.operation, "table": self.table, "error_type": error_type},
            )
            _fail_span(call.span, exc, error_type)
        except Exception as internal:
            _guard.report_internal_error("track_database_operation", internal)


def track_database_operation(
    operation_type: str, table: str = "", *, system: str = "other_sql"
) -> Callable[[F], F]:
    """Track a database call: a CLIENT span ``{operation} {table}`` following the database
    semantic conventions (``db.system.name``, ``db.operation.name``, ``db.collection.name``),
    ``database_queries_total{operation,table,status}`` and
    ``database_query_duration_seconds{operation,table}``. A failure also counts in
    ``errors_total{error_type,source="database"}`` and logs one ERROR line; it is re-raised.

    >>> @track_database_operation("select", "users", system="postgresql")
    ... async def get_user(user_id: str): ...
    """
    if not isinstance(operation_type, str) or not operation_type:
        raise ValueError("operation_type must be a non-empty string such as 'select'")

    def decorate(fn: F) -> F:
        return wrap(fn, _DatabaseProbe(operation_type, table, system))

    return decorate
