"""The health plugin: health results as OpenTelemetry signals, and the rings behind the dashboard.

Run by every ``configure()``. It

- exposes ``health_check_status{component}`` (1 healthy, 0.5 degraded or unknown, 0 unhealthy;
  components never checked have no series) and ``circuit_breaker_state{breaker,state}`` (1 for the
  current state, 0 for the others) as observable gauges, read at collection time;
- attaches ``telemetry.events`` to its monitor, which publishes every component status transition
  as a :class:`HealthChanged` event (``kind="health.changed"``, ``data={"component", "previous",
  "status", "critical", "message"}``) — what the webhook plugin subscribes to;
- on each such event writes a log line (WARNING when worse, INFO when better) and records a
  ``health.status_changed`` span event (on a short ``health.status_change`` span);
- owns the background task that re-runs the checks every ``refresh_interval_s`` while an app with
  the router serves, so ``health_check_status`` and transition alerts stay current.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Final

from atoms_otel.base.events import HealthChanged
from atoms_otel.core.telemetry import Telemetry
from atoms_otel.otel.logs import get_logger
from atoms_otel.otel.metrics import MetricsRegistry
from atoms_otel.plugins.health.circuit_breaker import CircuitState, all_breakers
from atoms_otel.plugins.health.monitor import HealthMonitor, all_monitors, get_health_monitor

__all__ = ["HealthPlugin"]

_logger = get_logger("atoms_otel.health")
_RANK: Final = {"healthy": 0, "unknown": 1, "degraded": 1, "unhealthy": 2}

_gauges_lock = threading.Lock()
_gauges: list[object] = []  # held here: the proxy meter keeps instruments only weakly


def _health_values() -> dict[tuple[tuple[str, str], ...], float]:
    values: dict[tuple[tuple[str, str], ...], float] = {}
    for monitor in all_monitors():
        for name, result in monitor.last_results().items():
            values[(("component", name),)] = result.status.gauge_value
    return values


def _breaker_values() -> dict[tuple[tuple[str, str], ...], float]:
    values: dict[tuple[tuple[str, str], ...], float] = {}
    for breaker in all_breakers():
        current = breaker.state
        for state in CircuitState:
            values[(("breaker", breaker.name), ("state", state.value))] = 1.0 if state is current else 0.0
    return values


def _ensure_gauges(registry: MetricsRegistry) -> None:
    """Create the observable gauges once per process; the proxy meter carries them across
    re-configuration, so creating them again would only duplicate them."""
    with _gauges_lock:
        if _gauges:
            return
        _gauges.append(
            registry.observable_gauge(
                "health.check.status",
                _health_values,
                "Health status per component: 1 healthy, 0.5 degraded, 0 unhealthy",
            )
        )
        _gauges.append(
            registry.observable_gauge(
                "circuit_breaker.state",
                _breaker_values,
                "Circuit breaker state: 1 for the current state (closed, open, half_open), 0 for others",
            )
        )


class HealthPlugin:
    """Health transitions as events, logs and span events; the health gauges; the refresh task."""

    def __init__(self, monitor: HealthMonitor | None = None) -> None:
        self.monitor = monitor if monitor is not None else get_health_monitor()
        self._telemetry: Telemetry | None = None
        self._unsubscribe: Callable[[], None] | None = None

    def setup(self, telemetry: Telemetry) -> None:
        self._telemetry = telemetry
        _ensure_gauges(telemetry.metrics)
        self.monitor.events = telemetry.events
        self._unsubscribe = telemetry.events.subscribe(HealthChanged, self._on_change)

    def shutdown(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        telemetry, self._telemetry = self._telemetry, None
        if telemetry is not None and self.monitor.events is telemetry.events:
            self.monitor.events = None

    async def run(self) -> None:
        """Re-run the monitor's checks every ``refresh_interval_s`` (none when it is ``None``)."""
        if self.monitor.refresh_interval_s:
            await self.monitor.run_periodically()

    def _on_change(self, event: HealthChanged) -> None:
        telemetry = self._telemetry
        if telemetry is None:
            return
        # A first result that is not healthy (from "unknown") is news worth a warning too.
        worse = _RANK.get(event.status, 1) > _RANK.get(event.previous, 1) or (
            event.previous == "unknown" and event.status != "healthy"
        )
        fields: dict[str, str | bool] = {
            "component": event.component,
            "component_type": event.component_type,
            "previous": event.previous,
            "status": event.status,
            "critical": event.critical,
            "health_message": event.detail,
        }
        (_logger.warning if worse else _logger.info)(event.message, extra_fields=fields)
        attributes = {f"health.{key}": value for key, value in fields.items()}
        with telemetry.tracer.start_as_current_span("health.status_change", attributes=attributes) as span:
            span.add_event("health.status_changed", attributes)
