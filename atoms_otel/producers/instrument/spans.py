"""``atoms_otel.span(name, **attributes)``: a manual span, as a context manager or a decorator.

>>> with atoms_otel.span("load profile", user_tier="pro") as span:
...     span.set_attribute("rows", 3)
>>> @atoms_otel.span("rank results")
... async def rank(results): ...

Sync and async, on functions, coroutines and generators. The span is a child of the current one,
carries the request context (``atoms.correlation_id``, ``user.id``, ...) like every span, and its
attributes are scrubbed on export. An exception is recorded on the span, sets its status and
``error.type``, and propagates unchanged.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar

from opentelemetry import context as otel_context
from opentelemetry import trace

from atoms_otel.base import first_use
from atoms_otel.base.semconv import attribute_value, exception_type
from atoms_otel.core.telemetry import Telemetry
from atoms_otel.producers.instrument.values import SpanCall, fail_span
from atoms_otel.producers.instrument.wrapping import wrap

__all__ = ["ManualSpan"]

F = TypeVar("F", bound=Callable[..., Any])


class ManualSpan:
    """One named span with attributes; enter it (``with``/``async with``) or decorate with it.

    Entering twice at once (nesting the same object) is refused: create one per block.
    """

    __slots__ = ("_attributes", "_span", "_telemetry", "_token", "name")

    def __init__(self, telemetry: Telemetry, name: str, attributes: dict[str, Any]) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError("span name must be a non-empty string")
        self._telemetry = telemetry
        self.name = name
        self._attributes = {key: attribute_value(value) for key, value in attributes.items()}
        self._span: trace.Span | None = None
        self._token: object | None = None

    def __enter__(self) -> trace.Span:
        if self._span is not None:
            raise RuntimeError(f"span {self.name!r} is already open; create a new one to nest")
        if first_use.pending:
            first_use.run()
        span = self._telemetry.tracer.start_span(self.name, attributes=self._attributes)
        self._span = span
        self._token = otel_context.attach(trace.set_span_in_context(span))
        return span

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        span, token = self._span, self._token
        self._span = self._token = None
        if token is not None:
            otel_context.detach(token)  # type: ignore[arg-type]
        if span is None:
            return
        if exc is not None:
            fail_span(span, exc, exception_type(exc))
        else:
            span.end()

    async def __aenter__(self) -> trace.Span:
        return self.__enter__()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.__exit__(exc_type, exc, tb)

    def __call__(self, fn: F) -> F:
        """Decorate ``fn``: each call runs in its own span of this name and these attributes."""
        return wrap(fn, _SpanProbe(self._telemetry, self.name, self._attributes))

    def __repr__(self) -> str:
        return f"span({self.name!r}, {self._attributes!r})"


class _SpanProbe:
    def __init__(self, telemetry: Telemetry, name: str, attributes: dict[str, Any]) -> None:
        self.telemetry = telemetry
        self.name = name
        self.attributes = attributes

    def start(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> SpanCall:
        span = self.telemetry.tracer.start_span(self.name, attributes=self.attributes)
        return SpanCall(span, time.perf_counter(), None)

    def done(self, call: SpanCall, result: Any) -> None:
        call.span.end()

    def fail(self, call: SpanCall, exc: BaseException) -> None:
        fail_span(call.span, exc, exception_type(exc))
