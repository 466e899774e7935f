"""The trace explorer's store: what it keeps, for how long, and within which bounds."""

from __future__ import annotations

import gc
import itertools
import tracemalloc
from typing import Any

from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode

from atoms_otel.plugins.signals.traces import ExplorerLimits, SpanRecord, TraceStore

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


def _trace(store: TraceStore, trace_id: int, now: float, **root: Any) -> None:
    """One trace: a child span, then its root (the order spans end in)."""
    limits = store.limits
    child = _record(_span(trace_id, parent=7, name="child"), limits)
    store.add_spans([child, _record(_span(trace_id, span_id=7, **root), limits)], now)


def test_the_newest_traces_are_kept_and_older_ordinary_ones_evicted() -> None:
    """Past ``recent_traces``, ordinary traces go oldest first."""
    store = TraceStore(ExplorerLimits(recent_traces=5), slow_ms=1000)
    for trace_id in range(1, 9):
        _trace(store, trace_id, T0 + trace_id)
    assert [t.trace_id for t in store.newest_first()] == [8, 7, 6, 5, 4]
    assert store.stats(0).spans == 10


def test_errors_and_slow_traces_are_kept_for_keep_s_beyond_the_newest() -> None:
    """An error and a slow trace outlive the recent window, until ``keep_s`` has passed."""
    store = TraceStore(ExplorerLimits(recent_traces=3, keep_s=900), slow_ms=1000)
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
    limits = ExplorerLimits(spans_per_trace=4)
    store = TraceStore(limits, slow_ms=1000)
    store.add_spans([_record(_span(1, parent=99, name=f"s{i}"), limits) for i in range(10)], T0)
    trace = store.get(1)
    assert trace is not None and (len(trace.spans), trace.dropped_spans) == (4, 6)


def test_max_traces_bounds_errors_too() -> None:
    """Errors beyond ``max_traces`` go, oldest first."""
    store = TraceStore(ExplorerLimits(recent_traces=2, max_traces=10), slow_ms=1000)
    for trace_id in range(1, 31):
        _trace(store, trace_id, T0, status=StatusCode.ERROR)
    assert [t.trace_id for t in store.newest_first()] == list(range(30, 20, -1))


def test_the_memory_cap_evicts_the_oldest_traces_first() -> None:
    """Past ``max_bytes`` (estimated), the oldest traces go, whatever they are."""
    limits = ExplorerLimits(max_bytes=40_000)
    store = TraceStore(limits, slow_ms=1000)
    big = {"payload": "x" * 3000}
    for trace_id in range(1, 41):
        _trace(store, trace_id, T0, status=StatusCode.ERROR, attributes=big)
    kept = [t.trace_id for t in store.newest_first()]
    assert store.bytes <= limits.max_bytes
    assert kept == list(range(40, 40 - len(kept), -1)) and 5 < len(kept) < 40
    assert store.bytes == sum(t.size for t in store.done.values())


def test_open_traces_are_closed_after_keep_s_or_past_their_limit() -> None:
    """A trace whose root never ends is shown as it is: after ``keep_s``, or when too many are open."""
    limits = ExplorerLimits(open_traces=3, keep_s=900)
    store = TraceStore(limits, slow_ms=1000)
    for trace_id in range(1, 6):
        store.add_spans([_record(_span(trace_id, parent=5, name="orphan"), limits)], T0)
    assert (list(store.open), [t.trace_id for t in store.newest_first()]) == ([3, 4, 5], [2, 1])
    store.add_spans([], T0 + 901)
    assert not store.open and len(store.done) == 5
    assert all(t.root is None for t in store.done.values())


def test_attribute_strings_and_events_are_cut_to_their_limits() -> None:
    """Long values are cut with an ellipsis; events past the limit are not kept."""
    limits = ExplorerLimits(max_value_chars=10, events_per_span=2)
    events = tuple(Event(f"e{i}", {"k": "v"}, timestamp=1_000_000_000 + i) for i in range(5))
    record = _record(_span(1, attributes={"long": "y" * 50, "list": ("a" * 20,)}, events=events), limits)
    assert record.attributes == {"long": "y" * 10 + "…", "list": ["a" * 10 + "…"]}
    assert [name for name, _, _ in record.events] == ["e0", "e1"]


def _typical(i: int) -> ReadableSpan:
    return _span(
        i,
        attributes={
            "http.route": "/items/{item_id}",
            "http.request.method": "GET",
            "url.path": f"/items/{i}",
            "correlation.id": f"{i:032x}",
            "http.response.status_code": 200,
            "user_agent.original": "Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0",
        },
        events=(Event("exception", {"exception.type": "ValueError", "exception.message": f"bad {i}"}),),
    )


def _dynamic(i: int) -> ReadableSpan:
    return _span(i, attributes={f"key.{j}": f"value {i}-{j}" for j in range(20)})


def test_the_size_estimate_covers_the_memory_records_really_hold() -> None:
    """tracemalloc: what 2000 records keep once their spans are gone is below their estimate, and
    within 2.5x of it, for typical server spans and for spans with 20 attributes of their own."""
    limits = ExplorerLimits()
    for make in (_typical, _dynamic):
        tracemalloc.start()
        before = tracemalloc.take_snapshot()
        spans = [make(i) for i in range(1, 2001)]
        records = [_record(span, limits) for span in spans]
        del spans
        gc.collect()
        after = tracemalloc.take_snapshot()
        tracemalloc.stop()
        measured = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
        estimated = sum(r.size for r in records)
        assert measured <= estimated <= 2.5 * measured, (make.__name__, measured, estimated)
