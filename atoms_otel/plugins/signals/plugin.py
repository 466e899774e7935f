"""The live-signals plugin: the rings behind the dashboard, and the task that keeps them filled.

:class:`LiveSignalsPlugin` (run by every ``configure()``) owns a :class:`LiveSignals` ring of HTTP
traffic readings and a :class:`RecentErrors` ring of the last 100 :class:`UnhandledError` events; its
``run()`` task takes a reading every 5 s while an app with the router serves, so the dashboard's
time series has no holes. With the ``explorer`` setting on (the default) and outside serverless
mode it also runs the :class:`TraceExplorer` (recent traces and log lines), added to the
pipeline's tracer provider and the root logger, and removed again at shutdown.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from atoms_otel.base import guard as _guard
from atoms_otel.base.events import Event, UnhandledError
from atoms_otel.core.telemetry import Telemetry
from atoms_otel.plugins.health.model import sanitize_message
from atoms_otel.plugins.signals.explorer import TraceExplorer
from atoms_otel.plugins.signals.live import MAX_RECENT_ERRORS, SAMPLE_INTERVAL_S, LiveSignals

__all__ = ["LiveSignalsPlugin", "RecentErrors"]


class RecentErrors:
    """The last 100 ``error.unhandled`` events, newest first on read."""

    def __init__(self, maxlen: int = MAX_RECENT_ERRORS) -> None:
        self._events: deque[dict[str, Any]] = deque(maxlen=maxlen)
        self._lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        data = event.data
        status = data.get("status_code")
        entry = {
            "timestamp": event.timestamp,
            "error_type": sanitize_message(data.get("error_type", ""))[:100],
            "method": sanitize_message(data.get("method", ""))[:16],
            "route": sanitize_message(data.get("route", "")),
            "status_code": status if isinstance(status, int) and not isinstance(status, bool) else None,
            "message": sanitize_message(event.message),
            "correlation_id": _short(event.correlation_id),
            "trace_id": _short(event.trace_id),
        }
        with self._lock:
            self._events.append(entry)

    def latest(self, limit: int) -> list[dict[str, Any]]:
        with self._lock:
            return list(reversed(self._events))[:limit]


def _short(value: object) -> str | None:
    return None if value is None else sanitize_message(value)[:64]


class LiveSignalsPlugin:
    """The dashboard's rings for one configuration (see module docs)."""

    def __init__(self) -> None:
        self.live = LiveSignals()
        self.recent_errors = RecentErrors()
        self.explorer: TraceExplorer | None = None
        """Recent traces and log lines; ``None`` when the explorer is off."""
        self._telemetry: Telemetry | None = None
        self._unsubscribe: Callable[[], None] | None = None

    def setup(self, telemetry: Telemetry) -> None:
        self._telemetry = telemetry
        self._unsubscribe = telemetry.events.subscribe(UnhandledError, self.recent_errors)
        settings, pipeline = telemetry.settings, telemetry.pipeline
        if settings.explorer and not settings.serverless and pipeline is not None:
            explorer = TraceExplorer(slow_ms=settings.slow_request_ms, scrubber=lambda: telemetry.scrubber)
            pipeline.tracer_provider.add_span_processor(explorer)
            explorer.start()
            explorer.follow_forks()
            self.explorer = explorer

    def shutdown(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self.explorer is not None:
            self.explorer.shutdown()  # the provider's shutdown calls it again: harmless
        self._telemetry = None

    def take_reading(self) -> None:
        """Add a reading of the current metrics to the ring."""
        telemetry = self._telemetry
        if telemetry is not None:
            self.live.observe(telemetry.metrics_snapshot())

    async def run(self) -> None:
        """Feed the ring every 5 s while the app serves."""
        while True:
            await asyncio.sleep(SAMPLE_INTERVAL_S)
            with _guard.guard("live signals sampler"):
                # A snapshot costs CPU in proportion to the series count: off the event loop.
                await asyncio.to_thread(self.take_reading)
