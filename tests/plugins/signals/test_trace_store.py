"""The trace explorer's store: what it keeps, for how long, and within which bounds."""

from __future__ import annotations

import gc
import itertools
import tracemalloc
from typing import Any

from opentelemetry.sdk.trace import Event, ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, Tracer

from atoms_otel.base.scrubbing import Scrubber
from atoms_otel.plugins.signals.store import TraceStore
from atoms_otel.plugins.signals.traces import ExplorerLimits, SpanRecord, raw_size

T0 = 1_800_000_000.0
_ids = itertools.count(1)


def _span(
    trace_id: int,
    *,
    parent: int = 0,
    name: str = "GET /items/{item_id}",
    ms: float = 10.0,
    status: StatusCode = StatusCode.UNSET,
    attributes: dict[str, Any] | None = None,
    events: tuple[Event, ...] = (),
    span_id: int | None = None,
) -> ReadableSpan:
    start = 1_000_000_000
    return ReadableSpan(
        name=name,
        context=SpanContext(trace_id, span_id or next(_ids), is_remote=False),
        parent=SpanContext(trace_id, parent, is_remote=False) if parent else None,
        attributes=attributes or {"http.route": "/items/{item_id}", "http.response.status_code": 200},
        events=events,
        kind=SpanKind.SERVER if not parent else SpanKind.INTERNAL,
        status=Status(status),
        start_time=start,
        end_time=start + int(ms * 1e6),
    )


def _record(span: ReadableSpan, limits: ExplorerLimits) -> SpanRecord:
    return SpanRecord(span, limits)


def _store(**limits: Any) -> TraceStore:
    return TraceStore(ExplorerLimits(**limits), slow_ms=1000, scrubber=Scrubber)


def _trace(store: TraceStore, trace_id: int, now: float, **root: Any) -> None:
    """One trace: a child span, then its root (the order spans end in)."""
    store.add_spans([_span(trace_id, parent=7, name="child"), _span(trace_id, span_id=7, **root)], now)


def test_the_newest_traces_are_kept_and_older_ordinary_ones_evicted() -> None:
    """Past ``recent_traces``, ordinary traces go oldest first."""
    store = _store(recent_traces=5)
    for trace_id in range(1, 9):
        _trace(store, trace_id, T0 + trace_id)
    assert [t.trace_id for t in store.newest_first()] == [8, 7, 6, 5, 4]
    assert store.stats(0).spans == 10


def test_errors_and_slow_traces_are_kept_for_keep_s_beyond_the_newest() -> None:
    """An error and a slow trace outlive the recent window, until ``keep_s`` has passed."""
    store = _store(recent_traces=3, keep_s=900)
    _trace(store, 1, T0, status=StatusCode.ERROR)
    _trace(store, 2, T0, ms=1500)
    _trace(store, 3, T0, attributes={"http.response.status_code": 503})
    for trace_id in range(10, 20):
        _trace(store, trace_id, T0 + 60)
    assert [t.trace_id for t in store.newest_first()] == [19, 18, 17, 3, 2, 1]
    _trace(store, 20, T0 + 899)
    assert {1, 2, 3} <= set(store.done)
    _trace(store, 21, T0 + 901)
    assert [t.trace_id for t in store.newest_first()] == [21, 20, 19]


def test_spans_past_the_per_trace_limit_are_counted_not_kept() -> None:
    """A trace keeps at most ``spans_per_trace`` spans and counts the rest."""
    store = _store(spans_per_trace=4)
    store.add_spans([_span(1, parent=99, name=f"s{i}") for i in range(10)], T0)
    trace = store.get(1)
    assert trace is not None and (len(trace.spans), trace.dropped_spans) == (4, 6)


def test_max_traces_bounds_errors_too() -> None:
    """Errors beyond ``max_traces`` go, oldest first."""
    store = _store(recent_traces=2, max_traces=10)
    for trace_id in range(1, 31):
        _trace(store, trace_id, T0, status=StatusCode.ERROR)
    assert [t.trace_id for t in store.newest_first()] == list(range(30, 20, -1))


def test_the_memory_cap_evicts_the_oldest_traces_first() -> None:
    """Past ``max_bytes`` (estimated), the oldest traces go, whatever they are."""
    store = _store(max_bytes=60_000)
    limits = store.limits
    big = {"payload": "x" * 3000}
    for trace_id in range(1, 41):
        _trace(store, trace_id, T0, status=StatusCode.ERROR, attributes=big)
    kept = [t.trace_id for t in store.newest_first()]
    assert store.bytes <= limits.max_bytes
    assert kept == list(range(40, 40 - len(kept), -1)) and 5 < len(kept) < 40
    assert store.bytes == sum(t.size for t in store.done.values())


def test_open_traces_are_closed_after_keep_s_or_past_their_limit() -> None:
    """A trace whose root never ends is shown as it is: after ``keep_s``, or when too many are open."""
    store = _store(open_traces=3, keep_s=900)
    for trace_id in range(1, 6):
        store.add_spans([_span(trace_id, parent=5, name="orphan")], T0)
    assert (list(store.open), [t.trace_id for t in store.newest_first()]) == ([3, 4, 5], [2, 1])
    store.add_spans([], T0 + 901)
    assert not store.open and len(store.done) == 5
    assert not any(t.complete for t in store.done.values())


def test_attribute_strings_and_events_are_cut_to_their_limits() -> None:
    """Long values are cut with an ellipsis; events past the limit are not kept."""
    limits = ExplorerLimits(max_value_chars=10, events_per_span=2)
    events = tuple(Event(f"e{i}", {"k": "v"}, timestamp=1_000_000_000 + i) for i in range(5))
    record = _record(_span(1, attributes={"long": "y" * 50, "list": ("a" * 20,)}, events=events), limits)
    assert record.attributes == {"long": "y" * 10 + "…", "list": ["a" * 10 + "…"]}
    assert [name for name, _, _ in record.events] == ["e0", "e1"]


class _Keep(SpanProcessor):
    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []

    def on_end(self, span: ReadableSpan) -> None:
        self.spans.append(span)


def _typical(tracer: Tracer, i: int) -> None:
    attributes = {
        "http.route": "/items/{item_id}",
        "http.request.method": "GET",
        "url.path": f"/items/{i}",
        "correlation.id": f"{i:032x}",
        "http.response.status_code": 200,
        "user_agent.original": "Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0",
    }
    with tracer.start_as_current_span("GET /items/{item_id}", attributes=attributes) as span:
        span.add_event("exception", {"exception.type": "ValueError", "exception.message": f"bad {i}"})


def _dynamic(tracer: Tracer, i: int) -> None:
    with tracer.start_as_current_span("work", attributes={f"key.{j}": f"value {i}-{j}" for j in range(20)}):
        pass


def _sdk_spans(make: Any) -> list[ReadableSpan]:
    """2000 spans ended by a real SDK tracer provider."""
    keep = _Keep()
    provider = TracerProvider(shutdown_on_exit=False)  # an atexit hook would keep the spans alive
    provider.add_span_processor(keep)
    tracer = provider.get_tracer("sizes")
    for i in range(1, 2001):
        make(tracer, i)
    spans, keep.spans = keep.spans, []
    return spans


def _measured(build: Any) -> tuple[int, Any]:
    """Bytes still held by what ``build()`` returns once everything else it made is gone."""
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    kept = build()
    gc.collect()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    return sum(stat.size_diff for stat in after.compare_to(before, "filename")), kept


def test_the_size_estimates_cover_the_memory_really_held() -> None:
    """tracemalloc: 2000 ended SDK spans, and 2000 records made from spans then dropped, hold less
    than their estimates and more than 40 % of them, for typical server spans and for spans with 20
    attributes of their own."""
    limits = ExplorerLimits()
    for make in (_typical, _dynamic):
        held, spans = _measured(lambda make=make: _sdk_spans(make))
        estimated = sum(raw_size(span) for span in spans)
        assert 0.4 * estimated <= held <= estimated, (make.__name__, "spans", held, estimated)
        del spans
        held, records = _measured(lambda make=make: [_record(s, limits) for s in _sdk_spans(make)])
        estimated = sum(r.size for r in records)
        assert 0.4 * estimated <= held <= estimated, (make.__name__, "records", held, estimated)


def test_a_shown_span_replaces_the_sdk_span_and_the_size_follows() -> None:
    """Showing a trace scrubs and copies its spans once; the store's byte count drops accordingly."""
    store = _store()
    _trace(store, 1, T0, attributes={"http.route": "/login", "password": "hunter2"})
    trace = store.get(1)
    assert trace is not None
    before = store.bytes
    records = store.records(trace)
    assert all(isinstance(s, SpanRecord) for s in trace.spans) and store.records(trace) == records
    assert records[1].attributes["password"] == "[REDACTED]"
    assert store.bytes < before and store.bytes == sum(t.size for t in store.done.values())
