"""The health plugin: health results as OpenTelemetry signals, and the rings behind the dashboard.

Run by every ``configure()``. It

- exposes ``health_check_status{component}`` (1 healthy, 0.5 degraded or unknown, 0 unhealthy;
  components never checked have no series) and ``circuit_breaker_state{breaker,state}`` (1 for the
  current state, 0 for the others) as observable gauges, read at collection time;
- on every component status transition writes a log line (WARNING when worse, INFO when better),
  records a ``health.status_changed`` span event (on a short ``health.status_change`` span), and
  publishes ``Event(kind="health.changed", data={"component", "previous", "status", "critical",
  "message"})`` on ``telemetry.events`` — what the webhook plugin subscribes to;
- keeps the dashboard's rings: HTTP traffic readings, and the last ``error.unhandled`` events.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Final

from atoms_otel.plugins.signals import live as live_signals
from atoms_otel.plugins.health.model import HealthStatus
from atoms_otel.plugins.health.circuit_breaker import CircuitState, all_breakers
from atoms_otel.plugins.health.monitor import Transition, add_transition_listener, all_monitors
from atoms_otel.otel.logs import get_logger
from atoms_otel.otel.metrics import get_metrics_registry
from atoms_otel.plugins import Event

if TYPE_CHECKING:
    from collections.abc import Callable

    from atoms_otel.core.telemetry import Telemetry

__all__ = ["HealthPlugin"]

_logger = get_logger("atoms_otel.health")
_RANK: Final = {
    HealthStatus.HEALTHY: 0,
    HealthStatus.UNKNOWN: 1,
    HealthStatus.DEGRADED: 1,
    HealthStatus.UNHEALTHY: 2,
}

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


def _ensure_gauges() -> None:
    """Create the observable gauges once per process; the proxy meter carries them across
    re-configuration, so creating them again would only duplicate them."""
    with _gauges_lock:
        if _gauges:
            return
        registry = get_metrics_registry()
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


def _severity(transition: Transition) -> str:
    status = transition.status
    if status is HealthStatus.UNHEALTHY:
        return "critical" if transition.current.critical else "error"
    if status is HealthStatus.HEALTHY:
        return "info"
    return "warning"


class HealthPlugin:
    """Publishes health transitions and serves the dashboard's live rings (see module docs)."""

    def __init__(self) -> None:
        self._telemetry: Telemetry | None = None
        self._undo: list[Callable[[], None]] = []
        self.signals: tuple[live_signals.LiveSignals, live_signals.RecentErrors] | None = None

    def setup(self, telemetry: Telemetry) -> None:
        self._telemetry = telemetry
        _ensure_gauges()
        self.signals = (live_signals.LiveSignals(), live_signals.RecentErrors())
        live_signals.set_active(self.signals)
        self._undo.append(telemetry.events.subscribe("error.unhandled", self.signals[1]))
        self._undo.append(add_transition_listener(self._on_transition))

    def shutdown(self) -> None:
        for undo in reversed(self._undo):
            undo()
        self._undo.clear()
        if live_signals.active() is self.signals:
            live_signals.set_active(None)
        self._telemetry = None

    def _on_transition(self, transition: Transition) -> None:
        telemetry = self._telemetry
        if telemetry is None:
            return
        current = transition.current
        # A first result that is not healthy (from "unknown") is news worth a warning too.
        worse = _RANK[transition.status] > _RANK[transition.previous] or (
            transition.previous is HealthStatus.UNKNOWN and transition.status is not HealthStatus.HEALTHY
        )
        message = (
            f"health of {current.name} changed from {transition.previous.value} to {current.status.value}"
            + (f": {current.message}" if current.message else "")
        )
        fields = {
            "component": current.name,
            "component_type": current.component_type.value,
            "previous": transition.previous.value,
            "status": current.status.value,
            "critical": current.critical,
            "health_message": current.message,
        }
        (_logger.warning if worse else _logger.info)(message, extra_fields=fields)
        attributes = {f"health.{key}": value for key, value in fields.items()}
        with telemetry.tracer.start_as_current_span("health.status_change", attributes=attributes) as span:
            span.add_event("health.status_changed", attributes)
        telemetry.events.publish(
            Event(
                kind="health.changed",
                severity=_severity(transition),
                message=message,
                data={
                    "component": current.name,
                    "previous": transition.previous.value,
                    "status": current.status.value,
                    "critical": current.critical,
                    "message": current.message,
                },
            )
        )
