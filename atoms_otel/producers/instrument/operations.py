"""``log_operation``: the start and end of an operation as log lines, with its duration."""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from opentelemetry.context import Context

from atoms_otel.base import guard as _guard
from atoms_otel.base.context import LogContext
from atoms_otel.base.semconv import exception_type
from atoms_otel.core.telemetry import Telemetry
from atoms_otel.otel.logs import get_logger
from atoms_otel.producers.instrument.values import Arguments, duration_ms, scrubbed
from atoms_otel.producers.instrument.wrapping import wrap, yielded_items

__all__ = ["log_operation"]

F = TypeVar("F", bound=Callable[..., Any])

_logger = get_logger("atoms_otel.tools")


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
        self, telemetry: Telemetry, name: str, fn: Callable[..., Any], level: int, options: tuple[bool, bool]
    ) -> None:
        self.telemetry = telemetry
        self.name = name
        self.level = level
        log_inputs, self.log_outputs = options
        self.arguments = Arguments(fn, lambda: telemetry.scrubber) if log_inputs else None
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
                    "duration_ms": duration_ms(call.start),
                }
                if self.log_outputs:
                    items = yielded_items(result)
                    fields["output"] = (
                        scrubbed(self.telemetry.scrubber, "output", result)
                        if items is None
                        else {"items": items}
                    )
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
                    "duration_ms": duration_ms(call.start),
                    **({"inputs": call.inputs} if call.inputs is not None else {}),
                },
            )
        except Exception as internal:
            _guard.report_internal_error("log_operation", internal)


def log_operation(
    name: str,
    log_level: str | int = "INFO",
    log_inputs: bool = False,
    log_outputs: bool = False,
    *,
    telemetry: Telemetry,
) -> Callable[[F], F]:
    """Log the start and end of an operation at ``log_level``, with its duration.

    Lines logged inside the operation carry ``operation=<name>``. A failure logs one ERROR line
    with the structured exception, which is re-raised unchanged. ``log_inputs`` adds the bound
    arguments to the start line, ``log_outputs`` the result to the end line — both scrubbed.
    """
    level = _level(log_level)

    def decorate(fn: F) -> F:
        return wrap(fn, _OperationProbe(telemetry, name, fn, level, (log_inputs, log_outputs)))

    return decorate
