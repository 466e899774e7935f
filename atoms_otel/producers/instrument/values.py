"""What a decorator records of a call: bounded, scrubbed copies of arguments and results, and the
span bookkeeping shared by the decorators."""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Mapping
from typing import Any, Final

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.semconv.attributes.error_attributes import ERROR_TYPE
from opentelemetry.trace import Status, StatusCode

from atoms_otel.base.scrubbing import Scrubber, active_scrubber

__all__ = ["Arguments", "SpanCall", "bounded", "duration_ms", "fail_span", "scrubbed", "status_description"]

_MAX_TEXT: Final = 1024
_MAX_ITEMS: Final = 50
_MAX_DEPTH: Final = 4
_MAX_DESCRIPTION: Final = 256


def bounded(value: Any, depth: int = 0) -> Any:
    """A loggable copy of ``value``: strings cut at 1 KiB, containers at 50 items, 4 levels deep;
    anything else by its ``repr`` (cut too). Secrets are removed afterwards by the scrubber."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return value if len(value) <= _MAX_TEXT else value[:_MAX_TEXT] + "…"
    if depth >= _MAX_DEPTH:
        return bounded(repr(value), depth)
    if isinstance(value, Mapping):
        items = list(value.items())[:_MAX_ITEMS]
        return {str(k): bounded(v, depth + 1) for k, v in items}
    if isinstance(value, list | tuple | set | frozenset):
        return [bounded(v, depth + 1) for v in list(value)[:_MAX_ITEMS]]
    return bounded(repr(value), depth)


def scrubbed(scrubber: Scrubber | None, key: str, value: Any) -> Any:
    """``value`` bounded, then scrubbed as the value of ``key``."""
    result = bounded(value)
    return scrubber.scrub_value(key, result) if scrubber is not None else result


class Arguments:
    """Binds call arguments to parameter names, for ``log_inputs``."""

    def __init__(self, fn: Callable[..., Any], scrubber: Callable[[], Scrubber | None]) -> None:
        self._scrubber = scrubber
        try:
            self._signature: inspect.Signature | None = inspect.signature(fn)
        except (TypeError, ValueError):  # builtins without a signature
            self._signature = None

    def __call__(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        scrubber = self._scrubber()
        if self._signature is not None:
            try:
                bound = self._signature.bind_partial(*args, **kwargs)
                return {k: scrubbed(scrubber, k, v) for k, v in bound.arguments.items()}
            except TypeError:
                pass
        keywords = {k: scrubbed(scrubber, k, v) for k, v in kwargs.items()}
        return {"args": scrubbed(scrubber, "args", list(args)), **keywords}


def duration_ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000.0, 3)


class SpanCall:
    """One call observed under a span: made current while the function runs."""

    __slots__ = ("context", "inputs", "span", "start")

    def __init__(self, span: trace.Span, start: float, inputs: dict[str, Any] | None) -> None:
        self.span = span
        self.context: Context | None = trace.set_span_in_context(span)
        self.start = start
        self.inputs = inputs


def fail_span(span: trace.Span, exc: BaseException, error_type: str) -> None:
    """Record the exception on the span (an event, scrubbed on export), set ``error.type`` and the
    ERROR status — described as ``<error.type>: <message>``, scrubbed here since export does not
    touch the status — and end it."""
    if span.is_recording():
        span.record_exception(exc)
        span.set_attribute(ERROR_TYPE, error_type)
        span.set_status(Status(StatusCode.ERROR, status_description(error_type, exc)))
    span.end()


def status_description(error_type: str, exc: BaseException) -> str:
    """``<error.type>: <message>`` (the SDK's own form), secrets redacted, at most 256 characters."""
    try:
        message = str(exc)
    except Exception:  # a broken __str__ must not cost the span its status
        message = ""
    text = f"{error_type}: {message}" if message else error_type
    scrubber = active_scrubber()
    return (scrubber.scrub_text(text) if scrubber is not None else text)[:_MAX_DESCRIPTION]
