"""Typed events and the one bus that carries them.

Something that happened — an unhandled request exception, a slow request, a health transition, a
windowed performance threshold crossed, a webhook delivery's outcome — is one frozen dataclass that
carries its own severity. Producers publish on ``telemetry.events``; plugins subscribe by type::

    telemetry.events.subscribe(HealthChanged, on_health)

For code written against the first version, every event also has a dotted ``kind``
(``error.unhandled``, ``health.changed``, ...) and a ``data`` mapping with the documented keys, and a
plain string subscribes by ``kind`` prefix (``""`` for everything). The application may publish its
own :class:`Event` with any kind. A failing subscriber is contained by the internal-error guard; it
never reaches the publisher.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal, TypeVar

from atoms_otel.base import guard

__all__ = [
    "SEVERITIES",
    "Event",
    "EventBus",
    "EventHub",
    "HealthChanged",
    "PerformanceDegraded",
    "Severity",
    "SlowRequest",
    "Subscriber",
    "UnhandledError",
    "WebhookOutcome",
    "health_severity",
]

Severity = Literal["info", "warning", "error", "critical"]
SEVERITIES: Final[tuple[Severity, ...]] = ("info", "warning", "error", "critical")


def health_severity(status: str, critical: bool) -> Severity:
    """The one severity rule for a health status: ``unhealthy`` is ``critical`` for a critical
    component and ``error`` otherwise; ``degraded`` and ``unknown`` are ``warning``; ``healthy``
    (a recovery) is ``info``."""
    status = str(status).lower()
    if status == "unhealthy":
        return "critical" if critical else "error"
    return "warning" if status in ("degraded", "unknown") else "info"


@dataclass(frozen=True)
class Event:
    """Something a plugin may react to; the base of every typed event.

    ``kind`` is a dotted name; ``correlation_id`` and ``trace_id`` tie the event to the request
    that caused it, when there was one. Typed events fill ``kind``, ``severity`` and ``data``
    themselves.
    """

    kind: str
    message: str = ""
    data: Mapping[str, Any] = field(default_factory=dict)
    severity: str = "info"
    correlation_id: str | None = None
    trace_id: str | None = None
    timestamp: float = field(default_factory=time.time)

    def _fill(self, kind: str, severity: str, data: Mapping[str, Any]) -> None:
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "severity", severity)
        object.__setattr__(self, "data", data)


@dataclass(frozen=True, kw_only=True)
class UnhandledError(Event):
    """A request ended in an exception nobody handled (``error.unhandled``, severity ``error``)."""

    kind: str = field(default="error.unhandled", init=False)
    data: Mapping[str, Any] = field(default_factory=dict, init=False)
    severity: str = field(default="error", init=False)
    error_type: str
    method: str
    route: str
    status_code: int = 500

    def __post_init__(self) -> None:
        data = {"error_type": self.error_type, "method": self.method, "route": self.route}
        self._fill("error.unhandled", "error", {**data, "status_code": self.status_code})


@dataclass(frozen=True, kw_only=True)
class SlowRequest(Event):
    """A request took longer than ``slow_request_ms`` (``performance.slow_request``, ``warning``)."""

    kind: str = field(default="performance.slow_request", init=False)
    data: Mapping[str, Any] = field(default_factory=dict, init=False)
    severity: str = field(default="warning", init=False)
    method: str
    route: str
    duration_ms: float
    threshold_ms: float

    def __post_init__(self) -> None:
        data = {"route": self.route, "method": self.method, "duration_ms": self.duration_ms}
        self._fill("performance.slow_request", "warning", {**data, "threshold_ms": self.threshold_ms})


@dataclass(frozen=True, kw_only=True)
class HealthChanged(Event):
    """A component's status changed between two runs of its check (``health.changed``); the
    severity follows :func:`health_severity`. ``detail`` is the check's own message."""

    kind: str = field(default="health.changed", init=False)
    data: Mapping[str, Any] = field(default_factory=dict, init=False)
    severity: str = field(default="info", init=False)
    component: str
    component_type: str = "custom"
    previous: str
    status: str
    critical: bool = False
    detail: str = ""

    def __post_init__(self) -> None:
        data: dict[str, Any] = {"component": self.component, "previous": self.previous}
        data.update({"status": self.status, "critical": self.critical, "message": self.detail})
        self._fill("health.changed", health_severity(self.status, self.critical), data)


@dataclass(frozen=True, kw_only=True)
class PerformanceDegraded(Event):
    """A windowed traffic threshold was crossed (``performance.degraded``, ``warning``)."""

    kind: str = field(default="performance.degraded", init=False)
    data: Mapping[str, Any] = field(default_factory=dict, init=False)
    severity: str = field(default="warning", init=False)
    metric: str
    value: float
    threshold: float
    window_s: float

    def __post_init__(self) -> None:
        data = {"metric": self.metric, "value": self.value, "threshold": self.threshold}
        self._fill("performance.degraded", "warning", {**data, "window_s": self.window_s})


_OUTCOME_SEVERITY: Final[Mapping[str, Severity]] = {
    "delivered": "info",
    "coalesced": "info",
    "cancelled": "warning",
    "dropped": "warning",
}


@dataclass(frozen=True, kw_only=True)
class WebhookOutcome(Event):
    """One webhook's delivery of one alert ended (``webhook.outcome``): ``info`` when delivered or
    coalesced, ``warning`` when cancelled or dropped, ``error`` when it failed for good."""

    kind: str = field(default="webhook.outcome", init=False)
    data: Mapping[str, Any] = field(default_factory=dict, init=False)
    severity: str = field(default="info", init=False)
    webhook: str
    outcome: str
    event_type: str
    attempts: int = 0

    def __post_init__(self) -> None:
        data = {"webhook": self.webhook, "outcome": self.outcome, "event_type": self.event_type}
        severity = _OUTCOME_SEVERITY.get(self.outcome, "error")
        self._fill("webhook.outcome", severity, {**data, "attempts": self.attempts})


E = TypeVar("E", bound=Event)
Subscriber = Callable[[Any], None]


class EventBus:
    """Synchronous publish/subscribe. Subscribers must be quick (queue work, don't do I/O)."""

    def __init__(self) -> None:
        self._subscribers: tuple[tuple[type[Event] | str, Subscriber], ...] = ()
        self._lock = threading.Lock()

    def subscribe(self, selector: type[E] | str, subscriber: Callable[[E], None]) -> Callable[[], None]:
        """Call ``subscriber`` for every event of type ``selector`` (subclasses included), or, with
        a string, for every event whose ``kind`` starts with it. Returns a function that
        unsubscribes."""
        entry = (selector, subscriber)
        with self._lock:
            self._subscribers = (*self._subscribers, entry)

        def unsubscribe() -> None:
            with self._lock:
                self._subscribers = tuple(s for s in self._subscribers if s is not entry)

        return unsubscribe

    def publish(self, event: Event) -> None:
        for selector, subscriber in self._subscribers:  # an immutable tuple: no lock needed here
            matches = (
                event.kind.startswith(selector) if isinstance(selector, str) else isinstance(event, selector)
            )
            if matches:
                try:
                    subscriber(event)
                except Exception as exc:
                    guard.report_internal_error(
                        f"event subscriber {getattr(subscriber, '__qualname__', subscriber)}", exc
                    )

    def clear(self) -> None:
        """Drop every subscriber (the handle does this when it retires a configuration)."""
        with self._lock:
            self._subscribers = ()


EventHub = EventBus
"""The first version's name for :class:`EventBus`."""
