"""The health plugin: gauges, transition log lines, span events and published events."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

import atoms_otel
from atoms_otel import (
    CircuitBreaker,
    ComponentType,
    CustomHealthCheck,
    Event,
    HealthStatus,
    PerformanceMonitor,
    get_health_monitor,
    register_health_check,
)
from atoms_otel.base import guard as _guard
from atoms_otel.testing import CapturedTelemetry
from tests.support.health import isolated_health_state
from tests.support.net import require_binary


@pytest.fixture(autouse=True)
def _isolated() -> Iterator[None]:
    with isolated_health_state():
        yield


@pytest.fixture
def events(capture_telemetry: CapturedTelemetry) -> list[Event]:
    seen: list[Event] = []
    assert capture_telemetry.telemetry is not None
    capture_telemetry.telemetry.events.subscribe("", seen.append)
    return seen


def _switchable(name: str, *, critical: bool = True) -> dict[str, Any]:
    state: dict[str, Any] = {"result": True}
    register_health_check(
        CustomHealthCheck(name, ComponentType.DATABASE, lambda: state["result"], critical=critical)
    )
    return state


async def test_gauge_reports_each_component_status(capture_telemetry: CapturedTelemetry) -> None:
    """health_check_status{component} is 1 healthy, 0.5 degraded, 0 unhealthy on /metrics."""
    register_health_check(CustomHealthCheck("db", ComponentType.DATABASE, lambda: True))
    register_health_check(CustomHealthCheck("cache", ComponentType.CACHE, lambda: HealthStatus.DEGRADED))
    register_health_check(CustomHealthCheck("queue", ComponentType.QUEUE, lambda: False, critical=False))
    await atoms_otel.check_health()
    text = capture_telemetry.prometheus_text()
    assert "# HELP health_check_status Health status per component" in text
    assert 'health_check_status{component="db"} 1.0' in text
    assert 'health_check_status{component="cache"} 0.5' in text
    assert 'health_check_status{component="queue"} 0.0' in text


async def test_gauge_follows_status_changes(capture_telemetry: CapturedTelemetry) -> None:
    """The gauge shows the latest result, read at collection time."""
    state = _switchable("db")
    await atoms_otel.check_health()
    state["result"] = False
    await atoms_otel.check_health()
    assert capture_telemetry.metric_value("health_check_status", component="db") == 0.0


async def test_transition_writes_a_log_line(capture_telemetry: CapturedTelemetry) -> None:
    """A change of status is logged at WARNING with the component and both statuses."""
    state = _switchable("db")
    await atoms_otel.check_health()
    state["result"] = {"healthy": False, "message": "connection refused"}
    await atoms_otel.check_health()
    lines = [line for line in capture_telemetry.log_lines if line["logger"] == "atoms_otel.health"]
    assert [(line["level"], line["message"]) for line in lines] == [
        ("WARNING", "health of db changed from healthy to unhealthy: connection refused")
    ]
    assert (lines[0]["component"], lines[0]["previous"], lines[0]["status"]) == ("db", "healthy", "unhealthy")


async def test_recovery_is_logged_at_info(capture_telemetry: CapturedTelemetry) -> None:
    """Getting better is news too, at INFO."""
    state = _switchable("db")
    state["result"] = False
    await atoms_otel.check_health()
    state["result"] = True
    await atoms_otel.check_health()
    levels = [line["level"] for line in capture_telemetry.log_lines if line["logger"] == "atoms_otel.health"]
    assert levels == ["WARNING", "INFO"]


async def test_transition_records_a_span_event(capture_telemetry: CapturedTelemetry) -> None:
    """Each transition is a health.status_changed event with the component's attributes."""
    _switchable("db")["result"] = False
    await atoms_otel.check_health()
    span = capture_telemetry.span("health.status_change")
    assert [event.name for event in span.events] == ["health.status_changed"]
    attributes = dict(span.events[0].attributes or {})
    assert {k: attributes[k] for k in ("health.component", "health.previous", "health.status")} == {
        "health.component": "db",
        "health.previous": "unknown",
        "health.status": "unhealthy",
    }


async def test_transition_publishes_health_changed_for_webhooks(events: list[Event]) -> None:
    """The webhook plugin's contract: kind health.changed and exactly these data keys."""
    _switchable("db")["result"] = {"status": "unhealthy", "message": "timeout"}
    await atoms_otel.check_health()
    published = [e for e in events if e.kind == "health.changed"]
    assert len(published) == 1
    assert dict(published[0].data) == {
        "component": "db",
        "previous": "unknown",
        "status": "unhealthy",
        "critical": True,
        "message": "timeout",
    }
    assert published[0].severity == "critical"


@pytest.mark.parametrize(
    ("result", "critical", "severity"),
    [(False, False, "error"), (HealthStatus.DEGRADED, True, "warning")],
    ids=["noncritical-unhealthy", "degraded"],
)
async def test_event_severity_follows_status_and_criticality(
    events: list[Event], result: Any, critical: bool, severity: str
) -> None:
    """Unhealthy critical → critical, unhealthy → error, degraded → warning."""
    _switchable("db", critical=critical)["result"] = result
    await atoms_otel.check_health()
    assert [e.severity for e in events if e.kind == "health.changed"] == [severity]


async def test_unchanged_status_publishes_nothing(events: list[Event]) -> None:
    """Repeated identical results are not transitions."""
    _switchable("db")["result"] = False
    for _ in range(3):
        await atoms_otel.check_health()
    assert len([e for e in events if e.kind == "health.changed"]) == 1


async def test_failing_subscriber_does_not_break_check_health(capture_telemetry: CapturedTelemetry) -> None:
    """A broken webhook subscriber is contained: the report is still returned and counted."""
    _guard.raise_internal_errors = False
    assert capture_telemetry.telemetry is not None

    def broken(event: Event) -> None:
        raise RuntimeError("webhook down")

    capture_telemetry.telemetry.events.subscribe("health.", broken)
    _switchable("db")["result"] = False
    report = await atoms_otel.check_health()
    assert report.status is HealthStatus.UNHEALTHY
    assert any("event subscriber" in name for name in _guard.internal_error_counts())


async def test_breaker_state_is_a_metric(capture_telemetry: CapturedTelemetry) -> None:
    """circuit_breaker_state{breaker,state} is 1 for the current state and 0 for the others."""
    breaker = CircuitBreaker("payments", failure_threshold=1)
    with pytest.raises(ConnectionError), breaker:
        raise ConnectionError("down")
    values = {
        state: capture_telemetry.metric_value("circuit_breaker_state", breaker="payments", state=state)
        for state in ("closed", "open", "half_open")
    }
    assert values == {"closed": 0.0, "open": 1.0, "half_open": 0.0}


def _traffic(requests: int, *, errors: int = 0, seconds: float = 0.02) -> None:
    for i in range(requests):
        atoms_otel.record_http_request("GET", "/items/{id}", 500 if i < errors else 200, seconds)


async def test_performance_monitor_degrades_on_error_rate(
    capture_telemetry: CapturedTelemetry, events: list[Event]
) -> None:
    """An error rate above the threshold degrades the component and publishes performance.degraded."""
    register_health_check(PerformanceMonitor(window_s=60, error_rate=0.05, min_requests=10))
    _traffic(40, errors=10)
    component = (await atoms_otel.check_health()).components["performance"]
    assert component.status is HealthStatus.DEGRADED
    assert component.message.startswith("error_rate 0.25 > 0.05")
    published = [e for e in events if e.kind == "performance.degraded"]
    assert [(e.data["metric"], e.data["value"], e.data["threshold"]) for e in published] == [
        ("error_rate", 0.25, 0.05)
    ]
    assert set(published[0].data) == {"metric", "value", "threshold", "window_s"}


async def test_performance_monitor_degrades_on_latency(capture_telemetry: CapturedTelemetry) -> None:
    """A p95 above latency_p95_ms degrades the component."""
    register_health_check(PerformanceMonitor(window_s=60, latency_p95_ms=500, min_requests=10))
    _traffic(20, seconds=2.0)
    component = (await atoms_otel.check_health()).components["performance"]
    assert component.status is HealthStatus.DEGRADED
    assert component.message.startswith("latency_p95_ms")


async def test_performance_monitor_needs_enough_traffic(capture_telemetry: CapturedTelemetry) -> None:
    """Below min_requests nothing is judged: a single failed request is not a degradation."""
    register_health_check(PerformanceMonitor(window_s=60, min_requests=10))
    _traffic(3, errors=3)
    component = (await atoms_otel.check_health()).components["performance"]
    assert (component.status, component.message) == (HealthStatus.HEALTHY, "not enough traffic to judge")


async def test_performance_degraded_is_published_once_per_episode(
    capture_telemetry: CapturedTelemetry, events: list[Event]
) -> None:
    """While it stays degraded, further checks do not publish again."""
    register_health_check(PerformanceMonitor(window_s=60, min_requests=10))
    _traffic(20, errors=20)
    for _ in range(3):
        await atoms_otel.check_health()
    assert len([e for e in events if e.kind == "performance.degraded"]) == 1


async def test_performance_monitor_is_healthy_under_good_traffic(
    capture_telemetry: CapturedTelemetry,
) -> None:
    """Fast, successful traffic is healthy and the window numbers are in the details."""
    register_health_check(PerformanceMonitor(window_s=60, min_requests=10))
    _traffic(30, seconds=0.02)
    component = (await atoms_otel.check_health()).components["performance"]
    assert component.status is HealthStatus.HEALTHY
    assert (component.details["requests"], component.details["error_rate"]) == (30.0, 0.0)
    assert 10.0 <= component.details["p95_ms"] <= 25.0


def test_shutdown_stops_reporting_transitions(capture_telemetry: CapturedTelemetry) -> None:
    """After shutdown() the plugin no longer logs or publishes transitions."""
    atoms_otel.shutdown()
    capture_telemetry.clear()
    _switchable("db")["result"] = False
    asyncio.run(get_health_monitor().check_health())
    assert [line for line in capture_telemetry.log_lines if line["logger"] == "atoms_otel.health"] == []


@pytest.mark.real
def test_health_metrics_pass_promtool_lint(capture_telemetry: CapturedTelemetry) -> None:
    """The health and breaker gauges are valid Prometheus exposition with HELP (real promtool)."""
    promtool = require_binary("promtool", "promtool (Debian package prometheus)")
    register_health_check(CustomHealthCheck("database", ComponentType.DATABASE, lambda: False))
    CircuitBreaker("payments")
    asyncio.run(atoms_otel.check_health())
    text = capture_telemetry.prometheus_text()
    result = subprocess.run(
        [promtool, "check", "metrics"], input=text.encode(), capture_output=True, timeout=30
    )
    assert 'health_check_status{component="database"} 0.0' in text
    assert (result.returncode, result.stdout + result.stderr) == (0, b"")


async def test_a_first_result_that_is_not_healthy_is_a_warning(capture_telemetry: CapturedTelemetry) -> None:
    """From unknown to degraded at startup is logged at WARNING, not INFO."""
    _switchable("jobs")["result"] = HealthStatus.DEGRADED
    await atoms_otel.check_health()
    lines = [line for line in capture_telemetry.log_lines if line["logger"] == "atoms_otel.health"]
    assert [(line["level"], line["previous"], line["status"]) for line in lines] == [
        ("WARNING", "unknown", "degraded")
    ]
