"""``PerformanceMonitor``: a health component that turns degraded when live traffic crosses a
threshold (error rate, latency p95/p99 over a sliding window of our own HTTP metrics)."""

from __future__ import annotations

import asyncio
from typing import Any

from atoms_otel.base.events import PerformanceDegraded
from atoms_otel.core.telemetry import Telemetry
from atoms_otel.plugins.health.checks import CheckOutcome, HealthCheck
from atoms_otel.plugins.health.model import ComponentType, HealthStatus
from atoms_otel.plugins.signals.live import WindowStats
from atoms_otel.plugins.signals.plugin import LiveSignalsPlugin

__all__ = ["PerformanceMonitor"]


class PerformanceMonitor(HealthCheck):
    """Degrade a component when the service itself is slow or failing::

        register_health_check(PerformanceMonitor(window_s=300, latency_p95_ms=1000, error_rate=0.05))

    Over the last ``window_s`` seconds of ``http_requests_total`` / ``http_request_duration_seconds``:
    an error rate (5xx / all) above ``error_rate``, or a p95 / p99 latency above
    ``latency_p95_ms`` / ``latency_p99_ms`` (``None`` turns a threshold off; the p95 threshold
    defaults to the ``slow_request_ms`` setting) makes the component degraded. With fewer than
    ``min_requests`` requests in the window nothing is judged (healthy). It never reports
    unhealthy: slowness is a reason to alert, not to take the instance out of rotation.

    Turning degraded publishes :class:`PerformanceDegraded` (``kind="performance.degraded"``,
    ``data={"metric", "value", "threshold", "window_s"}``) on ``telemetry.events``, once per
    episode. ``telemetry`` is the handle whose traffic is judged (``atoms_otel.PerformanceMonitor``
    uses the one ``atoms_otel.configure()`` fills).
    """

    def __init__(
        self,
        name: str = "performance",
        *,
        window_s: float = 300.0,
        latency_p95_ms: float | None = None,
        latency_p99_ms: float | None = None,
        error_rate: float | None = 0.05,
        min_requests: int = 20,
        critical: bool = False,
        timeout_s: float = 2.0,
        telemetry: Telemetry,
    ) -> None:
        if window_s <= 0:
            raise ValueError("window_s must be > 0")
        super().__init__(name, ComponentType.PERFORMANCE, critical=critical, timeout_s=timeout_s)
        self.window_s = window_s
        self.latency_p95_ms = latency_p95_ms
        self.latency_p99_ms = latency_p99_ms
        self.error_rate = error_rate
        self.min_requests = min_requests
        self.telemetry = telemetry
        self._degraded = False

    def _thresholds(self) -> list[tuple[str, float]]:
        p95 = self.latency_p95_ms
        if p95 is None and self.telemetry.configured:
            p95 = self.telemetry.settings.slow_request_ms
        candidates = [("error_rate", self.error_rate), ("latency_p99_ms", self.latency_p99_ms)]
        candidates.append(("latency_p95_ms", p95))
        return [(metric, float(limit)) for metric, limit in candidates if limit is not None]

    async def check(self) -> CheckOutcome:
        telemetry = self.telemetry
        signals = telemetry.plugin(LiveSignalsPlugin)
        if not telemetry.configured or signals is None:
            return {"status": HealthStatus.UNKNOWN, "message": "telemetry is not configured"}
        live = signals.live
        # Collecting a snapshot is CPU work proportional to the series count: off the event loop.
        newest = await asyncio.to_thread(lambda: live.observe(telemetry.metrics_snapshot()))
        stats = live.window(self.window_s, newest)
        details: dict[str, Any] = {
            "window_s": stats.window_s,
            "requests": stats.requests,
            "error_rate": stats.error_rate,
            "p50_ms": stats.p50_ms,
            "p95_ms": stats.p95_ms,
            "p99_ms": stats.p99_ms,
        }
        if stats.requests < self.min_requests:
            self._degraded = False
            return {"status": HealthStatus.HEALTHY, "message": "not enough traffic to judge", **details}
        breaches = self._breaches(stats)
        if not breaches:
            self._degraded = False
            return {"status": HealthStatus.HEALTHY, **details}
        message = "; ".join(f"{metric} {value:g} > {limit:g}" for metric, value, limit in breaches)
        if not self._degraded:
            self._degraded = True
            metric, value, limit = breaches[0]
            event = PerformanceDegraded(
                message=f"{self.name}: {message} over {stats.window_s:g} s",
                metric=metric,
                value=value,
                threshold=limit,
                window_s=stats.window_s,
            )
            telemetry.events.publish(event)
        return {"status": HealthStatus.DEGRADED, "message": message, **details}

    def _breaches(self, stats: WindowStats) -> list[tuple[str, float, float]]:
        observed = {
            "error_rate": stats.error_rate,
            "latency_p95_ms": stats.p95_ms,
            "latency_p99_ms": stats.p99_ms,
        }
        return [
            (metric, value, limit)
            for metric, limit in self._thresholds()
            if (value := observed[metric]) is not None and value > limit
        ]
