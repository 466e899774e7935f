"""Typed events and the one bus: each event carries its kind, severity and documented data."""

from __future__ import annotations

import pytest

from atoms_otel import (
    Event,
    EventBus,
    HealthChanged,
    PerformanceDegraded,
    SlowRequest,
    UnhandledError,
    WebhookOutcome,
)
from atoms_otel.base import guard as _guard
from atoms_otel.base.events import health_severity


def test_unhandled_error_has_the_documented_kind_severity_and_data() -> None:
    """error.unhandled, severity error, data with error_type, method, route and status_code."""
    event = UnhandledError(error_type="ValueError", method="GET", route="/items/{id}", correlation_id="c1")
    assert (event.kind, event.severity, event.correlation_id) == ("error.unhandled", "error", "c1")
    assert event.data == {
        "error_type": "ValueError",
        "method": "GET",
        "route": "/items/{id}",
        "status_code": 500,
    }


def test_slow_request_and_performance_degraded_are_warnings() -> None:
    """Both windowed and single slowness are warnings, with their documented data keys."""
    slow = SlowRequest(method="GET", route="/slow", duration_ms=1500.0, threshold_ms=1000.0)
    degraded = PerformanceDegraded(metric="error_rate", value=0.2, threshold=0.05, window_s=60)
    assert (slow.kind, slow.severity) == ("performance.slow_request", "warning")
    assert set(slow.data) == {"route", "method", "duration_ms", "threshold_ms"}
    assert (degraded.kind, degraded.severity) == ("performance.degraded", "warning")
    assert degraded.data == {"metric": "error_rate", "value": 0.2, "threshold": 0.05, "window_s": 60}


@pytest.mark.parametrize(
    ("status", "critical", "severity"),
    [
        ("unhealthy", True, "critical"),
        ("unhealthy", False, "error"),
        ("UNHEALTHY", False, "error"),
        ("degraded", True, "warning"),
        ("unknown", False, "warning"),
        ("healthy", True, "info"),
    ],
)
def test_one_severity_rule_for_health(status: str, critical: bool, severity: str) -> None:
    """A health change's severity follows the one rule, whoever asks (event or webhook sender)."""
    event = HealthChanged(component="db", previous="healthy", status=status, critical=critical)
    assert health_severity(status, critical) == severity == event.severity


def test_health_changed_data_keeps_the_component_message() -> None:
    """data["message"] is the check's own message; message is the human sentence."""
    event = HealthChanged(
        message="health of db changed", component="db", previous="healthy", status="degraded", detail="slow"
    )
    assert event.data == {
        "component": "db",
        "previous": "healthy",
        "status": "degraded",
        "critical": False,
        "message": "slow",
    }
    assert event.message == "health of db changed"


@pytest.mark.parametrize(
    ("outcome", "severity"),
    [
        ("delivered", "info"),
        ("coalesced", "info"),
        ("dropped", "warning"),
        ("failed", "error"),
        ("gone", "error"),
    ],
)
def test_webhook_outcome_severity(outcome: str, severity: str) -> None:
    """A delivery that reached its receiver is info; one that will never arrive is an error."""
    event = WebhookOutcome(webhook="w", outcome=outcome, event_type="error_occurred", attempts=3)
    assert (event.kind, event.severity, event.data["attempts"]) == ("webhook.outcome", severity, 3)


def test_bus_delivers_by_type_including_subclasses_and_by_kind_prefix() -> None:
    """A type subscription sees that type only; a string sees kinds with that prefix; "" sees all."""
    bus = EventBus()
    typed: list[Event] = []
    everything: list[Event] = []
    health: list[Event] = []
    bus.subscribe(UnhandledError, typed.append)
    bus.subscribe(Event, everything.append)
    bus.subscribe("health.", health.append)
    error = UnhandledError(error_type="E", method="GET", route="/")
    change = HealthChanged(component="db", previous="healthy", status="degraded")
    custom = Event("health.custom")
    for event in (error, change, custom):
        bus.publish(event)
    assert typed == [error]
    assert everything == [error, change, custom]
    assert health == [change, custom]


def test_unsubscribe_and_clear_stop_delivery() -> None:
    """The function subscribe() returns removes that subscriber; clear() removes all."""
    bus = EventBus()
    first: list[Event] = []
    second: list[Event] = []
    unsubscribe = bus.subscribe("", first.append)
    bus.subscribe("", second.append)
    unsubscribe()
    bus.publish(Event("x"))
    bus.clear()
    bus.publish(Event("y"))
    assert first == [] and [e.kind for e in second] == ["x"]


def test_a_failing_subscriber_is_contained_and_counted() -> None:
    """publish() never raises; the failure is counted once per subscriber."""
    _guard.raise_internal_errors = False
    bus = EventBus()
    received: list[str] = []

    def broken(event: Event) -> None:
        raise RuntimeError("subscriber bug")

    bus.subscribe(Event, broken)
    bus.subscribe(Event, lambda e: received.append(e.kind))
    bus.publish(Event("x"))
    bus.publish(Event("y"))
    assert received == ["x", "y"]
    assert sum(n for name, n in _guard.internal_error_counts().items() if "broken" in name) == 2


def test_events_are_immutable() -> None:
    """A subscriber cannot change what the next subscriber sees."""
    event = UnhandledError(error_type="E", method="GET", route="/")
    with pytest.raises(AttributeError):
        event.route = "/other"  # type: ignore[misc]
