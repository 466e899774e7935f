"""atoms_otel.span(): manual spans as context managers and decorators, sync and async."""

from __future__ import annotations

import asyncio

import pytest
from opentelemetry.trace import StatusCode

import atoms_otel
from atoms_otel import LogContext, get_logger
from atoms_otel.testing import CapturedTelemetry


def test_a_span_block_nests_carries_context_and_attributes(capture_telemetry: CapturedTelemetry) -> None:
    """The inner span is a child of the outer; attributes, LogContext fields and the log line's ids."""
    with LogContext(correlation_id="c-1"), atoms_otel.span("outer", tier="pro", ids=[1, 2]) as outer:
        outer.set_attribute("rows", 3)
        with atoms_otel.span("inner"):
            get_logger("app").info("inside")
    spans = {s.name: s for s in capture_telemetry.spans}
    inner, outer_span = spans["inner"], spans["outer"]
    assert inner.parent is not None and inner.parent.span_id == outer_span.context.span_id
    attributes = dict(outer_span.attributes or {})
    assert (attributes["tier"], attributes["ids"], attributes["rows"]) == ("pro", "[1,2]", 3)
    assert attributes["atoms.correlation_id"] == "c-1"
    line = next(line for line in capture_telemetry.log_lines if line["message"] == "inside")
    assert line["span_id"] == format(inner.context.span_id, "016x")


def test_an_exception_is_recorded_and_propagates_unchanged(capture_telemetry: CapturedTelemetry) -> None:
    """The same exception object reaches the caller; the span has the error status and event."""
    error = ValueError("bad input")
    with pytest.raises(ValueError, match="bad input") as caught, atoms_otel.span("failing"):
        raise error
    assert caught.value is error
    span = capture_telemetry.span("failing")
    assert span.status.status_code is StatusCode.ERROR
    assert (span.attributes or {})["error.type"] == "ValueError"
    assert [e.name for e in span.events] == ["exception"]


def test_as_a_decorator_each_call_gets_its_own_span(capture_telemetry: CapturedTelemetry) -> None:
    """Sync and async functions keep their name and result; one span per call."""

    @atoms_otel.span("sync work", kind_of="batch")
    def work(n: int) -> int:
        return n * 2

    @atoms_otel.span("async work")
    async def awork(n: int) -> int:
        await asyncio.sleep(0)
        return n + 1

    assert work(2) == 4 and work(3) == 6 and asyncio.run(awork(1)) == 2
    assert work.__name__ == "work"
    names = [s.name for s in capture_telemetry.spans]
    assert names.count("sync work") == 2 and names.count("async work") == 1


async def test_async_with(capture_telemetry: CapturedTelemetry) -> None:
    """``async with atoms_otel.span(...)`` works the same."""
    async with atoms_otel.span("async block") as span:
        span.set_attribute("ok", True)
    assert (capture_telemetry.span("async block").attributes or {})["ok"] is True


def test_the_same_span_object_cannot_be_open_twice(capture_telemetry: CapturedTelemetry) -> None:
    """Re-entering an open span object is refused; after it closes it can be used again."""
    block = atoms_otel.span("once")
    with block, pytest.raises(RuntimeError, match="already open"), block:
        pass
    with block:
        pass
    assert [s.name for s in capture_telemetry.spans].count("once") == 2
