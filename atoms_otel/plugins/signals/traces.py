"""The trace explorer's store: finished spans grouped into traces, kept within fixed bounds.

Spans arrive already scrubbed (see :mod:`atoms_otel.plugins.signals.explorer`) and are copied
into small :class:`SpanRecord` objects, so the store never holds the SDK's span objects. A trace
is *complete* when its local root span (no parent, or a parent in another process) has ended.

What it keeps (:class:`ExplorerLimits`, defaults in brackets):

- the newest ``recent_traces`` [500] complete traces, whatever they are;
- besides those, every complete trace with an error (a span with status ERROR, or a 5xx
  response) or slower than the ``slow_request_ms`` setting, for ``keep_s`` [900 s];
- traces whose root has not ended yet, at most ``open_traces`` [1000]; after ``keep_s`` they
  are closed as they are (shown without a root);
- at most ``spans_per_trace`` [200] spans per trace (later ones are counted, not kept),
  ``events_per_span`` [32] events per span, and attribute strings cut to ``max_value_chars``
  [4096] characters;
- at most ``max_traces`` [3000] traces and ``max_bytes`` [48 MiB] in all, by an estimate of each
  record's size (:func:`estimate_size`, checked against ``tracemalloc`` in the tests): past
  either, the oldest traces go first, whatever their kind.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.semconv.attributes.error_attributes import ERROR_TYPE
from opentelemetry.semconv.attributes.http_attributes import (
    HTTP_REQUEST_METHOD,
    HTTP_RESPONSE_STATUS_CODE,
    HTTP_ROUTE,
)
from opentelemetry.trace import StatusCode

__all__ = [
    "ExplorerLimits",
    "SpanRecord",
    "StoreStats",
    "TraceRecord",
    "TraceStore",
    "estimate_size",
]

CORRELATION_ID: Final = "correlation.id"  # set by our middleware; not a semantic convention
TOOL_NAME: Final = "gen_ai.tool.name"  # opentelemetry.semconv._incubating: not a public module
TRUNCATED: Final = "…"

# Bytes beyond the strings, measured with tracemalloc on CPython 3.11 (see the tests): a SpanRecord
# with its slots, ints and empty attribute dict; an event's tuples and dict; one dict entry. Keys
# are counted as if each were a string of its own (most are shared constants: an overestimate).
_SPAN_BASE: Final = 500
_EVENT_BASE: Final = 200
_ITEM_BASE: Final = 24
_TRACE_BASE: Final = 600


@dataclass(frozen=True)
class ExplorerLimits:
    """The explorer's bounds (see the module docs). Every one is fixed for the store's life."""

    recent_traces: int = 500
    keep_s: float = 900.0
    open_traces: int = 1000
    spans_per_trace: int = 200
    events_per_span: int = 32
    max_value_chars: int = 4096
    max_traces: int = 3000
    max_bytes: int = 48 * 1024 * 1024
    pending_spans: int = 20_000
    """Finished spans waiting for the grouping thread; past it the oldest waiting ones are dropped."""
    log_lines: int = 5000
    """Log lines in the process-wide ring."""
    logs_per_trace: int = 200


class SpanRecord:
    """One finished span, as shown: ids, times (ns since the epoch), names, attributes, events."""

    __slots__ = (
        "attributes",
        "end_ns",
        "events",
        "kind",
        "name",
        "parent_id",
        "remote_parent",
        "scope",
        "size",
        "span_id",
        "start_ns",
        "status",
        "status_message",
        "trace_id",
    )

    def __init__(self, span: ReadableSpan, limits: ExplorerLimits) -> None:
        context = span.context
        parent = span.parent
        self.trace_id: int = context.trace_id if context is not None else 0
        self.span_id: int = context.span_id if context is not None else 0
        self.parent_id: int = parent.span_id if parent is not None else 0
        self.remote_parent: bool = bool(parent is not None and parent.is_remote)
        self.name: str = _cut(span.name, limits.max_value_chars)
        self.kind: str = span.kind.name
        self.start_ns: int = span.start_time or 0
        self.end_ns: int = span.end_time or self.start_ns
        self.status: str = span.status.status_code.name
        self.status_message: str | None = span.status.description
        self.attributes: dict[str, Any] = _values(span.attributes, limits.max_value_chars)
        self.events: tuple[tuple[str, int, dict[str, Any]], ...] = tuple(
            (_cut(e.name, limits.max_value_chars), e.timestamp, _values(e.attributes, limits.max_value_chars))
            for e in span.events[: limits.events_per_span]
        )
        scope = span.instrumentation_scope
        self.scope: str = scope.name if scope is not None else ""
        self.size: int = estimate_size(self)

    @property
    def is_root(self) -> bool:
        """The local root: no parent, or a parent in another process."""
        return not self.parent_id or self.remote_parent

    @property
    def duration_ms(self) -> float:
        return max(self.end_ns - self.start_ns, 0) / 1e6


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + TRUNCATED


def _value(value: Any, limit: int) -> Any:
    if isinstance(value, str):
        return _cut(value, limit)
    if isinstance(value, tuple | list):
        return [_value(v, limit) for v in value[:64]]
    return value


def _values(attributes: Mapping[str, Any] | None, limit: int) -> dict[str, Any]:
    if not attributes:
        return {}
    return {_cut(str(k), 256): _value(v, limit) for k, v in attributes.items()}


def _value_size(value: Any) -> int:
    if isinstance(value, str):
        return 49 + len(value) * (1 if value.isascii() else 4)
    if isinstance(value, list):
        return 60 + 8 * len(value) + sum(_value_size(v) for v in value)
    return 32


def _mapping_size(values: Mapping[str, Any]) -> int:
    return sum(_ITEM_BASE + _value_size(k) + _value_size(v) for k, v in values.items())


def estimate_size(record: SpanRecord) -> int:
    """Bytes a record holds, estimated from its strings (an upper bound on CPython 3.11+)."""
    size = _SPAN_BASE + _value_size(record.name) + _mapping_size(record.attributes)
    if record.status_message:
        size += _value_size(record.status_message)
    for name, _, attributes in record.events:
        size += _EVENT_BASE + _value_size(name) + _mapping_size(attributes)
    return size


class TraceRecord:
    """The spans of one trace in this process, its log lines, and what the list shows of it."""

    __slots__ = ("completed", "dropped_spans", "error", "logs", "root", "size", "spans", "trace_id")

    def __init__(self, trace_id: int) -> None:
        self.trace_id = trace_id
        self.spans: list[SpanRecord] = []
        self.root: SpanRecord | None = None
        self.dropped_spans = 0
        self.error = False
        self.completed = 0.0  # time.time() the root ended (or the trace was closed, or first seen)
        self.logs: list[Any] = []
        self.size = _TRACE_BASE

    def add(self, record: SpanRecord, limit: int) -> int:
        """Keep ``record`` (within the per-trace limit); the bytes it added."""
        if len(self.spans) >= limit:
            self.dropped_spans += 1
            return 0
        self.spans.append(record)
        if record.status == StatusCode.ERROR.name:
            self.error = True
        if record.is_root and self.root is None:
            self.root = record
            status = record.attributes.get(HTTP_RESPONSE_STATUS_CODE)
            if isinstance(status, int) and status >= 500:
                self.error = True
        self.size += record.size
        return record.size

    @property
    def start_ns(self) -> int:
        return min((s.start_ns for s in self.spans), default=0)

    @property
    def duration_ms(self) -> float:
        if self.root is not None:
            return self.root.duration_ms
        end = max((s.end_ns for s in self.spans), default=0)
        return max(end - self.start_ns, 0) / 1e6

    @property
    def name(self) -> str:
        shown = self.root or (self.spans[0] if self.spans else None)
        return shown.name if shown is not None else ""

    def attribute(self, key: str) -> Any:
        """``key`` of the root span, else of the first span that has it."""
        if self.root is not None and key in self.root.attributes:
            return self.root.attributes[key]
        return next((s.attributes[key] for s in self.spans if key in s.attributes), None)

    @property
    def route(self) -> str | None:
        route = self.attribute(HTTP_ROUTE)
        return None if route is None else str(route)

    @property
    def method(self) -> str | None:
        method = self.attribute(HTTP_REQUEST_METHOD)
        return None if method is None else str(method)

    @property
    def status_code(self) -> int | None:
        status = self.root.attributes.get(HTTP_RESPONSE_STATUS_CODE) if self.root is not None else None
        return status if isinstance(status, int) and not isinstance(status, bool) else None

    @property
    def correlation_id(self) -> str | None:
        value = self.attribute(CORRELATION_ID)
        return None if value is None else str(value)

    @property
    def tools(self) -> list[str]:
        names = {str(s.attributes[TOOL_NAME]) for s in self.spans if TOOL_NAME in s.attributes}
        return sorted(names)

    @property
    def error_type(self) -> str | None:
        value = self.attribute(ERROR_TYPE)
        return None if value is None else str(value)

    def slow(self, slow_ms: float) -> bool:
        return self.duration_ms >= slow_ms


@dataclass(frozen=True)
class StoreStats:
    """What the store holds now, against its limits."""

    traces: int
    open_traces: int
    spans: int
    log_lines: int
    estimated_bytes: int
    limits: ExplorerLimits = field(repr=False)


class TraceStore:
    """Complete and open traces within :class:`ExplorerLimits` (not thread-safe: the explorer
    holds its lock around every call)."""

    def __init__(self, limits: ExplorerLimits, slow_ms: float) -> None:
        self.limits = limits
        self.slow_ms = slow_ms
        self.done: OrderedDict[int, TraceRecord] = OrderedDict()  # by completion, oldest first
        self.open: OrderedDict[int, TraceRecord] = OrderedDict()  # by first span, oldest first
        self.bytes = 0
        self._orphan_logs: OrderedDict[int, list[Any]] = OrderedDict()

    def add_spans(self, records: Iterable[SpanRecord], now: float) -> None:
        limits = self.limits
        for record in records:
            trace = self.done.get(record.trace_id) or self.open.get(record.trace_id)
            if trace is None:
                trace = self.open[record.trace_id] = TraceRecord(record.trace_id)
                trace.completed = now  # while open: when it was first seen
                trace.logs = self._orphan_logs.pop(record.trace_id, [])
                self.bytes += trace.size
            was_open = trace.root is None
            self.bytes += trace.add(record, limits.spans_per_trace)
            if was_open and trace.root is not None and record.trace_id in self.open:
                self._complete(trace, now)
        self._evict(now)

    def add_logs(self, entries: Sequence[Any], trace_of: Any, size_of: Any) -> None:
        """File log lines under their trace (``trace_of(entry)``; 0 for none). Lines of a trace not
        seen yet wait for its first span, for at most ``open_traces`` traces."""
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
                kept = (trace.error or trace.slow(self.slow_ms)) and trace.completed >= cutoff
                if not kept:
                    self._drop(self.done, trace_id)
        while self.done and (
            len(self.done) + len(self.open) > limits.max_traces or self.bytes > limits.max_bytes
        ):
            self._drop(self.done, next(iter(self.done)))
        while self.open and self.bytes > limits.max_bytes:
            self._drop(self.open, next(iter(self.open)))

    def get(self, trace_id: int) -> TraceRecord | None:
        return self.done.get(trace_id) or self.open.get(trace_id)

    def newest_first(self) -> list[TraceRecord]:
        """Complete traces, newest first."""
        return list(reversed(self.done.values()))

    def stats(self, log_lines: int) -> StoreStats:
        spans = sum(len(t.spans) for t in self.done.values()) + sum(len(t.spans) for t in self.open.values())
        return StoreStats(
            traces=len(self.done),
            open_traces=len(self.open),
            spans=spans,
            log_lines=log_lines,
            estimated_bytes=self.bytes,
            limits=self.limits,
        )
