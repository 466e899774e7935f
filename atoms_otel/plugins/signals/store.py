"""The trace explorer's store: a ring of the latest finished spans, and the error and slow traces
kept longer, within fixed bounds.

The request path only appends to the ring. The explorer's thread looks at each new span once, as
cheaply as it can: a span with status ERROR, or a local root span (no parent, or a parent in
another process) that answered 5xx or took at least ``slow_request_ms``, marks its trace to be
kept; the trace's spans are then scrubbed as exporters scrub them, copied into small records, and
kept (with its log lines) for ``keep_s``. Everything else stays in the ring as the SDK made it and
is only grouped into traces, scrubbed and copied when someone looks.

Bounds (:class:`~atoms_otel.plugins.signals.traces.ExplorerLimits`, defaults in brackets): the
ring holds the last ``recent_spans`` [5000] spans, from which the newest ``recent_traces`` [500]
complete traces are listed; kept traces: at most ``max_traces`` [2000], ``max_bytes`` [32 MiB] by
their estimated size, ``spans_per_trace`` [200] spans and ``logs_per_trace`` [200] lines each, for
``keep_s`` [900 s]; past a limit the oldest kept trace goes first.
"""

from __future__ import annotations

from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.semconv.attributes.error_attributes import ERROR_TYPE
from opentelemetry.semconv.attributes.http_attributes import (
    HTTP_REQUEST_METHOD,
    HTTP_RESPONSE_STATUS_CODE,
    HTTP_ROUTE,
)
from opentelemetry.trace import StatusCode

from atoms_otel.base.context import CORRELATION_ID_ATTRIBUTE
from atoms_otel.base.scrubbing import Scrubber, encodable
from atoms_otel.otel.exporters import scrubbed_span
from atoms_otel.plugins.signals.traces import TRACE_BASE, ExplorerLimits, SpanRecord, raw_size

__all__ = ["KeptTrace", "StoreStats", "TraceStore", "TraceView"]

TOOL_NAME: Final = "gen_ai.tool.name"  # opentelemetry.semconv._incubating is not a public module
_ERROR = StatusCode.ERROR


def _trace_id(span: ReadableSpan) -> int:
    return span.context.trace_id if span.context is not None else 0


def _is_root(span: ReadableSpan) -> bool:
    parent = span.parent
    return parent is None or parent.is_remote


def _failed_response(span: ReadableSpan) -> bool:
    status = (span.attributes or {}).get(HTTP_RESPONSE_STATUS_CODE)
    return isinstance(status, int) and status >= 500


class KeptTrace:
    """An error or slow trace kept for ``keep_s``: its spans as records, and its log lines."""

    __slots__ = ("dropped_spans", "kept_at", "logs", "size", "spans", "trace_id")

    def __init__(self, trace_id: int, now: float) -> None:
        self.trace_id = trace_id
        self.spans: list[SpanRecord] = []
        self.dropped_spans = 0
        self.kept_at = now
        self.logs: list[Any] = []
        self.size = TRACE_BASE

    def add(self, record: SpanRecord, limit: int) -> int:
        if len(self.spans) >= limit:
            self.dropped_spans += 1
            return 0
        self.spans.append(record)
        self.size += record.size
        return record.size


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
    end_ns: int
    span_count: int
    dropped_spans: int
    log_count: int
    complete: bool


@dataclass(frozen=True)
class StoreStats:
    """What the store holds now."""

    traces: int
    kept_traces: int
    spans: int
    log_lines: int
    estimated_bytes: int


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


class TraceStore:
    """The span ring and the kept traces (see the module docs). Not thread-safe: the explorer holds
    its lock around every call except :meth:`append`, which is the SDK's ``on_end`` path."""

    def __init__(
        self, limits: ExplorerLimits, slow_ms: float, scrubber: Callable[[], Scrubber | None]
    ) -> None:
        self.limits = limits
        self.slow_ms = slow_ms
        self.ring: deque[ReadableSpan] = deque(maxlen=limits.recent_spans)
        self.append = self.ring.append  # the request path: one atomic deque append
        self.kept: OrderedDict[int, KeptTrace] = OrderedDict()  # oldest first
        self.bytes = 0
        self._scrubber = scrubber
        self._last: ReadableSpan | None = None
        self._shown: dict[int, SpanRecord] = {}  # ring spans already scrubbed and copied, by id(span)

    # -- the explorer's thread --------------------------------------------------------------------

    def take_new(self) -> tuple[list[ReadableSpan], list[ReadableSpan]]:
        """The ring now (one C-level copy, atomic under the GIL) and the spans not looked at yet."""
        snapshot = list(self.ring)
        last, start = self._last, len(snapshot)
        while start and snapshot[start - 1] is not last:
            start -= 1
        if snapshot:
            self._last = snapshot[-1]
        return snapshot, snapshot[start:]

    def look(
        self,
        new: Sequence[ReadableSpan],
        snapshot: Sequence[ReadableSpan],
        now: float,
        lines_of: Callable[[set[int]], dict[int, list[Any]]],
    ) -> None:
        """Keep the traces ``new`` spans show to be errors or slow; add new spans of kept traces."""
        kept, slow_ns, limit = self.kept, self.slow_ms * 1e6, self.limits.spans_per_trace
        marked: dict[int, None] = {}
        for span in new:
            trace_id = _trace_id(span)
            trace = kept.get(trace_id)
            if trace is not None:
                self.bytes += trace.add(self._record(span), limit)
            elif span.status.status_code is _ERROR or (
                _is_root(span)
                and ((span.end_time or 0) - (span.start_time or 0) >= slow_ns or _failed_response(span))
            ):
                marked[trace_id] = None
        if len(marked) > self.limits.max_traces:  # an error storm: the older ones would go at once
            marked = dict.fromkeys(list(marked)[-self.limits.max_traces :])
        if marked:
            self._keep(marked, snapshot, now, lines_of(set(marked)))
        self._evict(now)

    def _keep(
        self,
        marked: dict[int, None],
        snapshot: Sequence[ReadableSpan],
        now: float,
        lines: dict[int, list[Any]],
    ) -> None:
        spans: dict[int, list[ReadableSpan]] = {trace_id: [] for trace_id in marked}
        for span in snapshot:
            found = spans.get(_trace_id(span))
            if found is not None:
                found.append(span)
        for trace_id, members in spans.items():
            trace = self.kept[trace_id] = KeptTrace(trace_id, now)
            for span in members:
                trace.add(self._record(span), self.limits.spans_per_trace)
            self.bytes += trace.size
            self.add_logs(trace_id, lines.get(trace_id, ()))

    def add_logs(self, trace_id: int, lines: Iterable[Any]) -> None:
        """File log lines under a kept trace (others are found in the log ring when shown)."""
        trace = self.kept.get(trace_id)
        if trace is None:
            return
        for line in lines:
            if len(trace.logs) >= self.limits.logs_per_trace:
                break
            trace.logs.append(line)
            size = line.size()
            trace.size += size
            self.bytes += size

    def _evict(self, now: float) -> None:
        limits, kept = self.limits, self.kept
        cutoff = now - limits.keep_s
        while kept and (
            next(iter(kept.values())).kept_at < cutoff
            or len(kept) > limits.max_traces
            or self.bytes > limits.max_bytes
        ):
            self.bytes -= kept.popitem(last=False)[1].size

    # -- showing ----------------------------------------------------------------------------------

    def _record(self, span: ReadableSpan) -> SpanRecord:
        record = self._shown.get(id(span))
        if record is None or record.span_id != span.context.span_id:
            record = SpanRecord(scrubbed_span(span, self._scrubber()), self.limits)
        return record

    def _shown_record(self, span: ReadableSpan) -> SpanRecord:
        record = self._record(span)
        self._shown[id(span)] = record
        return record

    def recent(self, snapshot: Sequence[ReadableSpan]) -> dict[int, list[ReadableSpan]]:
        """The ring's spans by trace, for the newest ``recent_traces`` complete traces, newest first."""
        groups: dict[int, list[ReadableSpan]] = {}
        roots: list[ReadableSpan] = []
        for span in snapshot:
            groups.setdefault(_trace_id(span), []).append(span)
            if _is_root(span):
                roots.append(span)
        roots.sort(key=lambda span: span.end_time or 0, reverse=True)
        newest = [_trace_id(root) for root in roots[: self.limits.recent_traces]]
        live = {id(span) for span in snapshot}
        self._shown = {key: record for key, record in self._shown.items() if key in live}
        return {trace_id: groups[trace_id] for trace_id in dict.fromkeys(newest)}

    def views(self, log_counts: Counter[int]) -> list[TraceView]:
        """Kept and recent complete traces, newest first."""
        snapshot = list(self.ring)
        views = [self._kept_view(trace) for trace in self.kept.values()]
        views += [
            self._ring_view(trace_id, spans, log_counts[trace_id])
            for trace_id, spans in self.recent(snapshot).items()
            if trace_id not in self.kept
        ]
        views.sort(key=lambda view: view.end_ns, reverse=True)
        return views

    def trace(self, trace_id: int) -> tuple[TraceView, list[SpanRecord], list[Any] | None] | None:
        """A kept trace, or one still in the ring (its log lines then ``None``: in the log ring)."""
        kept = self.kept.get(trace_id)
        if kept is not None:
            return self._kept_view(kept), list(kept.spans), list(kept.logs)
        spans = [span for span in self.ring.copy() if _trace_id(span) == trace_id]
        if not spans:
            return None
        return self._ring_view(trace_id, spans, 0), [self._shown_record(s) for s in spans], None

    def _kept_view(self, trace: KeptTrace) -> TraceView:
        root = next((s for s in trace.spans if s.is_root), None)
        failed = any(s.status == _ERROR.name for s in trace.spans)
        tools = {str(s.attributes[TOOL_NAME]) for s in trace.spans if TOOL_NAME in s.attributes}
        return self._view(
            trace.trace_id, root, trace.spans, failed, sorted(tools), len(trace.logs), trace.dropped_spans
        )

    def _ring_view(self, trace_id: int, spans: list[ReadableSpan], log_count: int) -> TraceView:
        raw_root = next((s for s in spans if _is_root(s)), None)
        root = self._shown_record(raw_root) if raw_root is not None else None
        records = [root] if root is not None else [self._shown_record(spans[0])]
        failed = any(s.status.status_code is _ERROR for s in spans)
        scrubber = self._scrubber()
        tools = {
            encodable(str(scrubber.scrub_value(TOOL_NAME, tool) if scrubber is not None else tool))
            for s in spans
            if (tool := (s.attributes or {}).get(TOOL_NAME)) is not None
        }
        view = self._view(trace_id, root, records, failed, sorted(tools), log_count, 0)
        # The list copies only the root: count and start from all the trace's spans in the ring.
        return replace(view, span_count=len(spans), start_ns=min(s.start_time or 0 for s in spans))

    def _view(
        self,
        trace_id: int,
        root: SpanRecord | None,
        spans: Sequence[SpanRecord],
        failed: bool,
        tools: list[str],
        log_count: int,
        dropped: int,
    ) -> TraceView:
        shown = root or (spans[0] if spans else None)
        attributes = root.attributes if root is not None else {}
        status = attributes.get(HTTP_RESPONSE_STATUS_CODE)
        status_code = status if isinstance(status, int) and not isinstance(status, bool) else None
        start = min((s.start_ns for s in spans), default=0)
        end = root.end_ns if root is not None else max((s.end_ns for s in spans), default=0)
        duration = root.duration_ms if root is not None else max(end - start, 0) / 1e6
        return TraceView(
            trace_id=trace_id,
            name=shown.name if shown is not None else "",
            method=_text(attributes.get(HTTP_REQUEST_METHOD)),
            route=_text(attributes.get(HTTP_ROUTE)),
            status_code=status_code,
            correlation_id=_text(attributes.get(CORRELATION_ID_ATTRIBUTE)),
            error_type=_text(attributes.get(ERROR_TYPE)),
            tools=tools,
            error=failed or (status_code is not None and status_code >= 500),
            slow=duration >= self.slow_ms,
            duration_ms=duration,
            start_ns=start,
            end_ns=end,
            span_count=len(spans),
            dropped_spans=dropped,
            log_count=log_count,
            complete=root is not None,
        )

    def stats(self, log_lines: int) -> StoreStats:
        snapshot = list(self.ring)
        listed = len(self.kept) + sum(1 for t in self.recent(snapshot) if t not in self.kept)
        return StoreStats(
            traces=listed,
            kept_traces=len(self.kept),
            spans=len(snapshot) + sum(len(t.spans) for t in self.kept.values()),
            log_lines=log_lines,
            estimated_bytes=self.bytes + sum(raw_size(span) for span in snapshot),
        )
