"""The trace explorer's store: what it keeps, for how long, and within which bounds."""

from __future__ import annotations

import gc
import itertools
import tracemalloc
from collections import Counter
from typing import Any

from opentelemetry.sdk.trace import Event, ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, Tracer

from atoms_otel.base.scrubbing import Scrubber
from atoms_otel.plugins.signals.logs import LogLine, LogRing
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
    start = 1_000_000_000 + trace_id * 1_000_000_000  # later traces end later
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


def _feed(
    store: TraceStore, spans: list[ReadableSpan], now: float, lines: dict[int, list[Any]] | None = None
) -> None:
    """What the SDK and the explorer's thread do: append each span, then one pass."""
    for span in spans:
        store.append(span)
    snapshot, new = store.take_new()
    store.look(new, snapshot, now, lambda ids: {k: v for k, v in (lines or {}).items() if k in ids})


def _trace(store: TraceStore, trace_id: int, now: float, **root: Any) -> None:
    """One trace: a child span, then its root (the order spans end in)."""
    _feed(store, [_span(trace_id, parent=7, name="child"), _span(trace_id, span_id=7, **root)], now)


def _listed(store: TraceStore) -> list[int]:
    return [view.trace_id for view in store.views(Counter())]


def test_the_newest_complete_traces_are_listed_from_the_span_ring() -> None:
    """The ring keeps the last ``recent_spans`` spans; the newest ``recent_traces`` complete
    traces in it are listed, newest first."""
    store = _store(recent_traces=3, recent_spans=10)
    for trace_id in range(1, 9):
        _trace(store, trace_id, T0)
    assert len(store.ring) == 10
    assert _listed(store) == [8, 7, 6]
    view = store.views(Counter({8: 2}))[0]
    assert (view.span_count, view.log_count, view.complete, view.route) == (2, 2, True, "/items/{item_id}")


def test_errors_and_slow_traces_are_kept_for_keep_s_beyond_the_ring() -> None:
    """An error (span status or 5xx) and a slow trace outlive the ring, until ``keep_s`` passed."""
    store = _store(recent_traces=3, recent_spans=6, keep_s=900)
    _trace(store, 1, T0, status=StatusCode.ERROR)
    _trace(store, 2, T0, ms=1500)
    _trace(store, 3, T0, attributes={"http.response.status_code": 503})
    for trace_id in range(10, 20):
        _trace(store, trace_id, T0 + 60)
    assert _listed(store) == [19, 18, 17, 2, 3, 1]  # by end: the slow one ended after 3
    assert all(len(store.kept[t].spans) == 2 for t in (1, 2, 3))  # the child came with its root
    _trace(store, 20, T0 + 899)
    assert set(store.kept) == {1, 2, 3}
    _trace(store, 21, T0 + 901)
    assert _listed(store) == [21, 20, 19] and not store.kept


def test_a_failing_child_keeps_its_trace_and_the_spans_after_it() -> None:
    """The trace is kept (and listed, as open) from its first failing span on; spans that end
    later join it."""
    store = _store()
    _feed(store, [_span(5, parent=9, name="db", status=StatusCode.ERROR)], T0)
    assert [(v.trace_id, v.complete) for v in store.views(Counter())] == [(5, False)]
    _feed(store, [_span(5, span_id=9)], T0 + 1)
    (view,) = store.views(Counter())
    assert (view.trace_id, view.span_count, view.error, view.complete) == (5, 2, True, True)


def test_spans_past_the_per_trace_limit_are_counted_not_kept() -> None:
    """A kept trace holds at most ``spans_per_trace`` spans and counts the rest."""
    store = _store(spans_per_trace=4)
    _feed(store, [_span(1, parent=99, name=f"s{i}", status=StatusCode.ERROR) for i in range(10)], T0)
    assert (len(store.kept[1].spans), store.kept[1].dropped_spans) == (4, 6)


def test_max_traces_bounds_the_kept_traces() -> None:
    """Kept traces beyond ``max_traces`` go, oldest first."""
    store = _store(recent_spans=4, max_traces=10)
    for trace_id in range(1, 31):
        _trace(store, trace_id, T0, status=StatusCode.ERROR)
    assert list(store.kept) == list(range(21, 31))


def test_the_memory_cap_evicts_the_oldest_kept_traces_first() -> None:
    """Past ``max_bytes`` (estimated), the oldest kept traces go."""
    store = _store(max_bytes=60_000)
    big = {"payload": "x" * 3000}
    for trace_id in range(1, 41):
        _trace(store, trace_id, T0, status=StatusCode.ERROR, attributes=big)
    kept = list(store.kept)
    assert store.bytes <= store.limits.max_bytes
    assert kept == list(range(41 - len(kept), 41)) and 5 < len(kept) < 40
    assert store.bytes == sum(t.size for t in store.kept.values())


def test_a_kept_trace_takes_its_log_lines() -> None:
    """The lines of a trace in the log ring when it is kept go with it (at most ``logs_per_trace``)."""
    store = _store(logs_per_trace=2)
    line = LogRing(10)
    handler_lines = [_line(line, 4, f"line {i}") for i in range(3)]
    _feed(store, [_span(4, status=StatusCode.ERROR)], T0, {4: handler_lines})
    assert [entry.message for entry in store.kept[4].logs] == ["line 0", "line 1"]


def test_a_shown_ring_trace_is_scrubbed_as_exported() -> None:
    """Opening a trace from the ring scrubs its spans as exporters do."""
    store = _store()
    _trace(store, 1, T0, attributes={"http.route": "/login", "password": "hunter2"})
    found = store.trace(1)
    assert found is not None
    view, records, lines = found
    assert lines is None and view.route == "/login"
    assert [r.name for r in records] == ["child", "GET /items/{item_id}"]
    assert records[1].attributes["password"] == "[REDACTED]"
    assert store.trace(2) is None


def test_attribute_strings_and_events_are_cut_to_their_limits() -> None:
    """Long values are cut with an ellipsis; events past the limit are not kept."""
    limits = ExplorerLimits(max_value_chars=10, events_per_span=2)
    events = tuple(Event(f"e{i}", {"k": "v"}, timestamp=1_000_000_000 + i) for i in range(5))
    record = _record(_span(1, attributes={"long": "y" * 50, "list": ("a" * 20,)}, events=events), limits)
    assert record.attributes == {"long": "y" * 10 + "…", "list": ["a" * 10 + "…"]}
    assert [name for name, _, _ in record.events] == ["e0", "e1"]


def _line(ring: LogRing, trace_id: int, message: str) -> LogLine:
    return LogLine(ring.next_seq(), T0, 20, "INFO", "test", message, trace_id, 1, (None,) * 4, None, None)


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
        "atoms.correlation_id": f"{i:032x}",
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
