"""The trace explorer: a span processor and a log handler that keep recent traces and log lines
in memory, for the live view at ``/observability`` and ``/api/observability/traces``.

On the request path it only appends: :meth:`TraceExplorer.on_end` puts a reference to the finished
span on a bounded ring (the last 5000 spans), the log handler a tuple on a bounded ring (the last
5000 lines). A daemon thread (``atoms-otel-explorer``, every 0.5 s) and every read do the rest under
one lock: look at each new span once to keep error and slow traces longer, file log lines under
kept traces, and evict past the limits (:mod:`atoms_otel.plugins.signals.store`). A span is
scrubbed as exporters scrub it (:func:`atoms_otel.otel.exporters.scrubbed_span`, with the
configured scrubber) and copied into a small record only when its trace is kept or shown.

It runs when the ``explorer`` setting (``ATOMS_OTEL_EXPLORER``, default on) is on, and never in
serverless mode (an instance per request has no "recent" to keep).
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from typing import Final

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from atoms_otel.base import guard as _guard
from atoms_otel.base.scrubbing import Scrubber
from atoms_otel.plugins.signals.logs import ExplorerLogHandler, LogLine, LogRing
from atoms_otel.plugins.signals.store import StoreStats, TraceStore, TraceView
from atoms_otel.plugins.signals.traces import ExplorerLimits, SpanRecord

__all__ = ["TraceExplorer"]

PASS_INTERVAL_S: Final = 0.5


class TraceExplorer(SpanProcessor):
    """Recent traces and log lines of this process (see the module docs).

    >>> explorer = TraceExplorer(slow_ms=1000, scrubber=lambda: telemetry.scrubber)
    >>> provider.add_span_processor(explorer); explorer.start()
    """

    def __init__(
        self,
        *,
        slow_ms: float,
        scrubber: Callable[[], Scrubber | None],
        limits: ExplorerLimits | None = None,
    ) -> None:
        self.limits = limits or ExplorerLimits()
        self.store = TraceStore(self.limits, slow_ms, scrubber)
        self.logs = LogRing(self.limits.log_lines)
        self.log_handler = ExplorerLogHandler(self.logs)
        self._scrubber = scrubber
        self._lock = threading.Lock()
        self._log_seq = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- the request path ---------------------------------------------------------------------

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        pass

    def on_end(self, span: ReadableSpan) -> None:
        self.store.append(span)

    # -- the grouping pass ----------------------------------------------------------------------

    def catch_up(self) -> None:
        """Look at what arrived since the last pass (the thread does it every 0.5 s; reads too)."""
        with self._lock:
            store = self.store
            lines = self.logs.since(self._log_seq)
            if lines:
                self._log_seq = lines[-1].seq
                for line in lines:
                    if line.trace_id in store.kept:
                        store.add_logs(line.trace_id, (line,))
            snapshot, new = store.take_new()
            # After the lines: a trace kept now takes its lines from the ring, once.
            store.look(new, snapshot, time.time(), self._lines_of)

    def _lines_of(self, trace_ids: set[int]) -> dict[int, list[LogLine]]:
        found: dict[int, list[LogLine]] = {}
        for line in self.logs.snapshot():
            if line.trace_id in trace_ids:
                found.setdefault(line.trace_id, []).append(line)
        return found

    def _run(self) -> None:
        while not self._stop.wait(PASS_INTERVAL_S):
            with _guard.guard("trace explorer"):
                self.catch_up()

    def start(self) -> None:
        """Start the grouping thread and capture log lines on the root logger."""
        self._stop.clear()
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="atoms-otel-explorer", daemon=True)
            self._thread.start()
        root = logging.getLogger()
        if self.log_handler not in root.handlers:
            root.addHandler(self.log_handler)

    def shutdown(self) -> None:
        logging.getLogger().removeHandler(self.log_handler)
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=2.0)

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True

    # -- reads ------------------------------------------------------------------------------------

    def traces(self) -> list[TraceView]:
        """Kept and recent complete traces, newest first (after a pass: what just ended is there)."""
        self.catch_up()
        counts = Counter(line.trace_id for line in self.logs.snapshot())
        with self._lock:
            return self.store.views(counts)

    def trace(self, trace_id: int) -> tuple[TraceView, list[SpanRecord], list[LogLine]] | None:
        """One trace (complete or not): what the list shows, its spans and its log lines."""
        self.catch_up()
        with self._lock:
            found = self.store.trace(trace_id)
        if found is None:
            return None
        view, spans, lines = found
        if lines is None:
            lines = self._lines_of({trace_id}).get(trace_id, [])[: self.limits.logs_per_trace]
            view = replace(view, log_count=len(lines))
        return view, spans, lines

    def log_lines(self) -> list[LogLine]:
        """The ring's log lines, oldest first."""
        return self.logs.snapshot()

    def stats(self) -> StoreStats:
        self.catch_up()
        with self._lock:
            return self.store.stats(len(self.logs.lines))

    def scrubber(self) -> Scrubber | None:
        return self._scrubber()

    def follow_forks(self) -> None:
        """A forked worker gets a fresh lock and its own grouping thread (threads do not survive
        ``fork()``, and the lock may have been held by the parent's thread)."""
        reference = weakref.ref(self)

        def after_in_child() -> None:
            inherited = reference()
            if inherited is not None and inherited._thread is not None:
                inherited._lock = threading.Lock()
                inherited._thread = None
                with _guard.guard("trace explorer fork"):
                    inherited.start()

        os.register_at_fork(after_in_child=after_in_child)
