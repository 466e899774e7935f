"""The trace explorer's store: finished spans grouped into traces, kept within fixed bounds.

Filing a span is cheap on purpose — its trace, whether it is the local root (no parent, or a
parent in another process), whether it failed, its estimated size — and happens on the explorer's
thread. Scrubbing and copying into a :class:`~atoms_otel.plugins.signals.traces.SpanRecord` wait
until the span is shown (the root of a listed trace, or every span of an opened one).

What it keeps (:class:`~atoms_otel.plugins.signals.traces.ExplorerLimits`, defaults in brackets):

- the newest ``recent_traces`` [500] complete traces (their root span ended), whatever they are;
- besides those, every complete trace with an error (a span with status ERROR, or a 5xx
  response) or at least as slow as the ``slow_request_ms`` setting, for ``keep_s`` [900 s];
- traces whose root has not ended, at most ``open_traces`` [1000]; after ``keep_s``, or past that
  number, the oldest are closed as they are (shown without a root);
- at most ``spans_per_trace`` [200] spans per trace (later ones are counted, not kept) and
  ``logs_per_trace`` [200] log lines;
- at most ``max_traces`` [3000] traces and ``max_bytes`` [64 MiB] in all, by the estimated size of
  what is held: past either, the oldest traces go first, whatever their kind.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.semconv.attributes.error_attributes import ERROR_TYPE
from opentelemetry.semconv.attributes.http_attributes import (
    HTTP_REQUEST_METHOD,
    HTTP_RESPONSE_STATUS_CODE,
    HTTP_ROUTE,
)
from opentelemetry.trace import StatusCode

from atoms_otel.base.scrubbing import Scrubber, encodable
from atoms_otel.otel.exporters import scrubbed_span
from atoms_otel.plugins.signals.traces import TRACE_BASE, ExplorerLimits, SpanRecord, raw_size

__all__ = ["StoreStats", "TraceRecord", "TraceStore", "TraceView"]

CORRELATION_ID: Final = "correlation.id"  # set by our middleware; not a semantic convention
TOOL_NAME: Final = "gen_ai.tool.name"  # opentelemetry.semconv._incubating is not a public module


class TraceRecord:
    """The spans of one trace in this process (SDK spans until shown, then records), its log
    lines, and what the store needs to decide how long to keep it."""

    __slots__ = (
        "completed",
        "dropped_spans",
        "end_ns",
        "error",
        "logs",
        "root",
        "size",
        "spans",
        "start_ns",
        "tools",
        "trace_id",
    )

    def __init__(self, trace_id: int, now: float) -> None:
        self.trace_id = trace_id
        self.spans: list[ReadableSpan | SpanRecord] = []
        self.root = -1  # the index of the local root span in ``spans``
        self.dropped_spans = 0
        self.error = False
        self.completed = now  # when the root ended (or the trace was closed); while open: first seen
        self.logs: list[Any] = []
        self.size = TRACE_BASE
        self.start_ns = 0
        self.end_ns = 0
        self.tools: set[str] = set()

    def add(self, span: ReadableSpan, limit: int) -> int:
        """File ``span`` (within the per-trace limit); the bytes it added."""
        if len(self.spans) >= limit:
            self.dropped_spans += 1
            return 0
        start, end = span.start_time or 0, span.end_time or 0
        if not self.spans or start < self.start_ns:
            self.start_ns = start
        self.end_ns = max(self.end_ns, end)
        attributes = span.attributes or {}
        if span.status.status_code is StatusCode.ERROR:
            self.error = True
        tool = attributes.get(TOOL_NAME)
        if tool is not None and len(self.tools) < 16:
            self.tools.add(str(tool))
        parent = span.parent
        if self.root < 0 and (parent is None or parent.is_remote):
            self.root = len(self.spans)
            status = attributes.get(HTTP_RESPONSE_STATUS_CODE)
            if isinstance(status, int) and status >= 500:
                self.error = True
        self.spans.append(span)
        size = raw_size(span)
        self.size += size
        return size

    @property
    def complete(self) -> bool:
        return self.root >= 0

    @property
    def duration_ms(self) -> float:
        span = self.spans[self.root] if self.root >= 0 else None
        if span is None:
            return max(self.end_ns - self.start_ns, 0) / 1e6
        if isinstance(span, SpanRecord):
            return span.duration_ms
        return max((span.end_time or 0) - (span.start_time or 0), 0) / 1e6


@dataclass(frozen=True)
class TraceView:
    """What the list shows of one trace: from its root span (or its first one), scrubbed."""

    trace_id: int
    name: str
    method: str | None
    route: str | None
    status_code: int | None
    correlation_id: str | None
    error_type: str | None
    tools: list[str]
    error: bool
    slow: bool
    duration_ms: float
    start_ns: int
    span_count: int
    dropped_spans: int
    log_count: int
    complete: bool


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


@dataclass(frozen=True)
class StoreStats:
    """What the store holds now."""

    traces: int
    open_traces: int
    spans: int
    log_lines: int
    estimated_bytes: int


class TraceStore:
    """Complete and open traces within :class:`ExplorerLimits` (not thread-safe: the explorer
    holds its lock around every call). ``scrubber()`` is the scrubber exporters use now."""

    def __init__(
        self, limits: ExplorerLimits, slow_ms: float, scrubber: Callable[[], Scrubber | None]
    ) -> None:
        self.limits = limits
        self.slow_ms = slow_ms
        self.done: OrderedDict[int, TraceRecord] = OrderedDict()  # by completion, oldest first
        self.open: OrderedDict[int, TraceRecord] = OrderedDict()  # by first span, oldest first
        self.bytes = 0
        self._scrubber = scrubber
        self._orphan_logs: OrderedDict[int, list[Any]] = OrderedDict()

    # -- filing ---------------------------------------------------------------------------------

    def add_spans(self, spans: Iterable[ReadableSpan], now: float) -> None:
        limit = self.limits.spans_per_trace
        done, open_ = self.done, self.open
        for span in spans:
            trace_id = span.context.trace_id if span.context is not None else 0
            trace = done.get(trace_id) or open_.get(trace_id)
            if trace is None:
                trace = open_[trace_id] = TraceRecord(trace_id, now)
                trace.logs = self._orphan_logs.pop(trace_id, [])
                self.bytes += trace.size
            was_open = trace.root < 0
            self.bytes += trace.add(span, limit)
            if was_open and trace.root >= 0 and trace_id in open_:
                self._complete(trace, now)
        self._evict(now)

    def add_logs(
        self, entries: Sequence[Any], trace_of: Callable[[Any], int], size_of: Callable[[Any], int]
    ) -> None:
        """File log lines under their trace (``trace_of(entry)``; 0 for none). Lines of a trace
        not seen yet wait for its first span, for at most ``open_traces`` traces."""
        limit = self.limits.logs_per_trace
        for entry in entries:
            trace_id = trace_of(entry)
            if not trace_id:
                continue
            trace = self.done.get(trace_id) or self.open.get(trace_id)
            if trace is not None:
                if len(trace.logs) < limit:
                    trace.logs.append(entry)
                    size = size_of(entry)
                    trace.size += size
                    self.bytes += size
                continue
            waiting = self._orphan_logs.get(trace_id)
            if waiting is None:
                waiting = self._orphan_logs[trace_id] = []
                while len(self._orphan_logs) > self.limits.open_traces:
                    self._orphan_logs.popitem(last=False)
            if len(waiting) < limit:
                waiting.append(entry)

    def _complete(self, trace: TraceRecord, now: float) -> None:
        del self.open[trace.trace_id]
        trace.completed = now
        self.done[trace.trace_id] = trace

    def _drop(self, table: OrderedDict[int, TraceRecord], trace_id: int) -> None:
        self.bytes -= table.pop(trace_id).size

    def _evict(self, now: float) -> None:
        limits = self.limits
        cutoff = now - limits.keep_s
        while self.open:  # too many open, or open too long: close the oldest as they are
            trace = next(iter(self.open.values()))
            if len(self.open) <= limits.open_traces and trace.completed >= cutoff:
                break
            self._complete(trace, now)
        older = len(self.done) - limits.recent_traces
        if older > 0:
            for trace_id, trace in list(self.done.items())[:older]:
                kept = (trace.error or trace.duration_ms >= self.slow_ms) and trace.completed >= cutoff
                if not kept:
                    self._drop(self.done, trace_id)
        while self.done and (
            len(self.done) + len(self.open) > limits.max_traces or self.bytes > limits.max_bytes
        ):
            self._drop(self.done, next(iter(self.done)))
        while self.open and self.bytes > limits.max_bytes:
            self._drop(self.open, next(iter(self.open)))

    # -- showing ----------------------------------------------------------------------------------

    def record(self, trace: TraceRecord, index: int) -> SpanRecord:
        """Span ``index`` of ``trace``, scrubbed and copied on first use (it then replaces the SDK's
        span, and the store's size follows)."""
        item = trace.spans[index]
        if isinstance(item, SpanRecord):
            return item
        record = SpanRecord(scrubbed_span(item, self._scrubber()), self.limits)
        delta = record.size - raw_size(item)
        trace.spans[index] = record
        trace.size += delta
        if self.get(trace.trace_id) is trace:
            self.bytes += delta
        return record

    def records(self, trace: TraceRecord) -> list[SpanRecord]:
        return [self.record(trace, index) for index in range(len(trace.spans))]

    def view(self, trace: TraceRecord) -> TraceView:
        shown = self.record(trace, max(trace.root, 0)) if trace.spans else None
        attributes = shown.attributes if shown is not None and trace.root >= 0 else {}
        status = attributes.get(HTTP_RESPONSE_STATUS_CODE)
        return TraceView(
            trace_id=trace.trace_id,
            name=shown.name if shown is not None else "",
            method=_text(attributes.get(HTTP_REQUEST_METHOD)),
            route=_text(attributes.get(HTTP_ROUTE)),
            status_code=status if isinstance(status, int) and not isinstance(status, bool) else None,
            correlation_id=_text(attributes.get(CORRELATION_ID)),
            error_type=_text(attributes.get(ERROR_TYPE)),
            tools=self._tools(trace),
            error=trace.error,
            slow=trace.duration_ms >= self.slow_ms,
            duration_ms=trace.duration_ms,
            start_ns=trace.start_ns,
            span_count=len(trace.spans),
            dropped_spans=trace.dropped_spans,
            log_count=len(trace.logs),
            complete=trace.complete,
        )

    def _tools(self, trace: TraceRecord) -> list[str]:
        """``gen_ai.tool.name`` of its spans, as exporters send that attribute."""
        scrubber = self._scrubber()
        if scrubber is None:
            return sorted(encodable(t) for t in trace.tools)
        return sorted(encodable(str(scrubber.scrub_value(TOOL_NAME, t))) for t in trace.tools)

    def get(self, trace_id: int) -> TraceRecord | None:
        return self.done.get(trace_id) or self.open.get(trace_id)

    def newest_first(self) -> list[TraceRecord]:
        """Complete traces, newest first."""
        return list(reversed(self.done.values()))

    def stats(self, log_lines: int) -> StoreStats:
        tables = (self.done, self.open)
        return StoreStats(
            traces=len(self.done),
            open_traces=len(self.open),
            spans=sum(len(t.spans) for table in tables for t in table.values()),
            log_lines=log_lines,
            estimated_bytes=self.bytes,
        )
