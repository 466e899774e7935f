"""The webhook plugin: telemetry events and error logs become alerts; configure() registers a webhook."""

from __future__ import annotations

import base64
import hashlib
import logging
import threading
import time
import weakref

import pytest

import atoms_otel
from atoms_otel import (
    Event,
    HealthChanged,
    PerformanceDegraded,
    SlowRequest,
    UnhandledError,
    WebhookManager,
    WebhookOutcome,
    get_telemetry,
)
from atoms_otel.plugins.webhooks import WebhookPlugin, verify_signature
from atoms_otel.testing import CapturedTelemetry
from tests.support.receiver import Receiver, Reply
from tests.support.webhooks import fast

SECRET = "whsec_" + base64.b64encode(b"s" * 24).decode()


def _publish(event: Event) -> None:
    telemetry = get_telemetry()
    assert telemetry is not None
    telemetry.events.publish(event)


@pytest.fixture
def wired(
    capture_telemetry: CapturedTelemetry, receiver: Receiver, webhooks: WebhookManager
) -> WebhookManager:
    """configure() with a webhook plugin on the test's own manager, pointed at the receiver."""
    webhooks.add_webhook(fast(receiver.url))
    capture_telemetry.reconfigure(service_name="atoms-mcp", plugins=[WebhookPlugin(webhooks)])
    return webhooks


def test_unhandled_error_event_alerts_with_correlation_and_trace_ids(
    wired: WebhookManager, receiver: Receiver
) -> None:
    """error.unhandled becomes error_occurred carrying the request's correlation id and trace id."""
    _publish(
        UnhandledError(
            message="division by zero",
            error_type="ZeroDivisionError",
            method="GET",
            route="/items/{item_id}",
            correlation_id="req-42",
            trace_id="ab" * 16,
        )
    )
    body = receiver.wait_for(1)[0].json()
    assert body["event_type"] == "error_occurred"
    assert body["message"] == "ZeroDivisionError: division by zero"
    assert body["correlation_id"] == "req-42"
    assert body["trace_id"] == "ab" * 16
    assert body["service"] == "atoms-mcp"
    assert body["data"] == {
        "error_type": "ZeroDivisionError",
        "error_message": "division by zero",
        "source": "GET /items/{item_id}",
        "method": "GET",
        "route": "/items/{item_id}",
        "status_code": 500,
    }


def test_health_change_event_alerts_with_severity_from_the_status(
    wired: WebhookManager, receiver: Receiver
) -> None:
    """A critical component turning unhealthy is a critical health_status_changed alert."""
    _publish(
        HealthChanged(
            component="supabase",
            previous="healthy",
            status="unhealthy",
            critical=True,
            detail="connection refused",
        )
    )
    body = receiver.wait_for(1)[0].json()
    assert body["event_type"] == "health_status_changed"
    assert body["severity"] == "critical"
    assert body["message"] == "supabase is unhealthy (was healthy): connection refused"
    assert body["data"]["component"] == "supabase"


def test_recovery_is_an_info_alert(wired: WebhookManager, receiver: Receiver) -> None:
    """Back to healthy is reported too, at info severity."""
    _publish(HealthChanged(component="cache", previous="degraded", status="healthy"))
    assert receiver.wait_for(1)[0].json()["severity"] == "info"


def test_performance_degraded_event_alerts(wired: WebhookManager, receiver: Receiver) -> None:
    """performance.degraded becomes performance_degraded with the metric, value and threshold."""
    _publish(PerformanceDegraded(metric="http_p95_ms", value=2300.0, threshold=1000.0, window_s=60))
    body = receiver.wait_for(1)[0].json()
    assert body["event_type"] == "performance_degraded"
    assert body["severity"] == "warning"
    assert body["message"] == "http_p95_ms is 2300, past the threshold 1000 over 60s"
    assert body["data"] == {"metric": "http_p95_ms", "value": 2300.0, "threshold": 1000.0, "window_s": 60.0}


def test_a_single_slow_request_does_not_alert(wired: WebhookManager, receiver: Receiver) -> None:
    """performance.slow_request is left to logs and metrics."""
    _publish(SlowRequest(method="GET", route="/slow", duration_ms=4000, threshold_ms=1000))
    assert wired.flush(timeout=2)
    assert receiver.requests == []


def test_events_without_webhooks_start_nothing(capture_telemetry: CapturedTelemetry) -> None:
    """With no webhook registered an event costs a check: no alert is queued, no thread starts."""
    manager = WebhookManager()
    capture_telemetry.reconfigure(plugins=[WebhookPlugin(manager)])
    _publish(UnhandledError(message="boom", error_type="RuntimeError", method="", route=""))
    assert manager.pending == 0
    assert not [t for t in threading.enumerate() if t.name == "atoms-otel-webhooks" and t is manager._thread]
    assert manager._thread is None


def test_configure_registers_the_webhook_url_and_signs_with_the_secret(
    capture_telemetry: CapturedTelemetry, receiver: Receiver
) -> None:
    """configure(webhook_url, webhook_secret) wires the global manager; shutdown unregisters it."""
    capture_telemetry.reconfigure(webhook_url=receiver.url, webhook_secret=SECRET)
    manager = atoms_otel.webhook_manager
    assert [w.url for w in manager.webhooks] == [receiver.url]
    _publish(UnhandledError(message="boom", error_type="RuntimeError", method="", route=""))
    request = receiver.wait_for(1)[0]
    atoms_otel.shutdown()

    assert verify_signature(SECRET, request.headers, request.body)
    assert manager.webhooks == ()


def test_webhook_url_from_the_environment_is_registered(
    capture_telemetry: CapturedTelemetry, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ATOMS_OTEL_WEBHOOK_URL registers a webhook at startup."""
    monkeypatch.setenv("ATOMS_OTEL_WEBHOOK_URL", receiver.url)
    capture_telemetry.reconfigure()
    try:
        assert [w.url for w in atoms_otel.webhook_manager.webhooks] == [receiver.url]
    finally:
        atoms_otel.shutdown()


def test_shutdown_drains_alerts_raised_just_before(
    capture_telemetry: CapturedTelemetry, receiver: Receiver
) -> None:
    """An alert raised right before atoms_otel.shutdown() still reaches the receiver."""
    receiver.default = Reply(delay=0.2)
    capture_telemetry.reconfigure(webhook_url=receiver.url)
    _publish(HealthChanged(component="db", previous="healthy", status="degraded"))
    atoms_otel.shutdown()
    assert [r.json()["event_type"] for r in receiver.requests] == ["health_status_changed"]


def test_error_log_records_alert_when_enabled(
    capture_telemetry: CapturedTelemetry, receiver: Receiver, webhooks: WebhookManager
) -> None:
    """With webhook_log_level=ERROR an error log line raises error_occurred; a warning does not."""
    webhooks.add_webhook(fast(receiver.url))
    capture_telemetry.reconfigure(webhook_log_level="ERROR", plugins=[WebhookPlugin(webhooks)])
    log = logging.getLogger("app.billing")
    log.warning("card declined")
    try:
        raise ConnectionError("ledger unreachable")
    except ConnectionError:
        log.exception("could not settle invoice %s", "inv-1")
    assert webhooks.flush(timeout=5)

    [request] = receiver.requests
    body = request.json()
    assert body["message"] == "ConnectionError: could not settle invoice inv-1"
    assert body["data"] == {
        "error_type": "ConnectionError",
        "source": "log:app.billing",
        "logger": "app.billing",
        "error_message": "ledger unreachable",
    }


def test_error_logs_do_not_alert_by_default(wired: WebhookManager, receiver: Receiver) -> None:
    """Without webhook_log_level, log records never become alerts."""
    logging.getLogger("app").error("something broke")
    assert wired.flush(timeout=2)
    assert receiver.requests == []


def test_delivery_failures_do_not_feed_back_into_alerts(
    capture_telemetry: CapturedTelemetry, receiver: Receiver, webhooks: WebhookManager
) -> None:
    """Our own 'delivery failed' warnings are not turned into alerts, even at WARNING."""
    receiver.default = Reply(500)
    webhooks.add_webhook(fast(receiver.url, max_retries=0))
    capture_telemetry.reconfigure(webhook_log_level="WARNING", plugins=[WebhookPlugin(webhooks)])
    webhooks.notify_warning("first")
    assert webhooks.flush(timeout=5)
    time.sleep(0.2)
    assert webhooks.flush(timeout=5)

    assert len(receiver.requests) == 1
    assert any("delivery failed" in line for line in capture_telemetry.raw_log_lines)


def test_server_traceback_of_an_unhandled_exception_is_left_to_the_event(
    capture_telemetry: CapturedTelemetry, receiver: Receiver, webhooks: WebhookManager
) -> None:
    """uvicorn's 'Exception in ASGI application' record is not a second alert for the same error."""
    webhooks.add_webhook(fast(receiver.url))
    capture_telemetry.reconfigure(webhook_log_level="ERROR", plugins=[WebhookPlugin(webhooks)])
    try:
        raise ValueError("bad")
    except ValueError:
        logging.getLogger("uvicorn.error").exception("Exception in ASGI application")
    assert webhooks.flush(timeout=2)
    assert receiver.requests == []


def test_force_flush_waits_for_queued_alerts(wired: WebhookManager, receiver: Receiver) -> None:
    """atoms_otel.force_flush() (what serverless mode calls) returns once the alert was delivered."""
    receiver.default = Reply(delay=0.3)
    _publish(HealthChanged(component="db", previous="healthy", status="degraded"))
    assert atoms_otel.force_flush(timeout_s=5)
    assert len(receiver.requests) == 1
    assert wired.pending == 0


def test_each_delivery_outcome_is_published_as_a_typed_event(
    wired: WebhookManager, receiver: Receiver
) -> None:
    """The worker publishes WebhookOutcome for every delivery: delivered here, with its attempts."""
    telemetry = get_telemetry()
    assert telemetry is not None
    outcomes: list[WebhookOutcome] = []
    telemetry.events.subscribe(WebhookOutcome, outcomes.append)
    _publish(UnhandledError(message="boom", error_type="RuntimeError", method="GET", route="/x"))
    receiver.wait_for(1)
    assert wired.flush(timeout=5)
    assert [(o.outcome, o.event_type, o.severity, o.attempts) for o in outcomes] == [
        ("delivered", "error_occurred", "info", 1)
    ]
    assert outcomes[0].webhook == wired.webhooks[0].name


VERCEL = {
    "VERCEL": "1",
    "VERCEL_DEPLOYMENT_ID": "dpl_7Hc2",
    "VERCEL_ENV": "production",
    "VERCEL_URL": "atoms-mcp-abc.vercel.app",
    "VERCEL_GIT_COMMIT_SHA": "4f2a9c1",
}


def test_a_vercel_deployment_announces_itself_once_per_cold_start(
    capture_telemetry: CapturedTelemetry,
    receiver: Receiver,
    webhooks: WebhookManager,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On Vercel the first configure() sends one deployment_completed with the deployment's facts,
    signed with a webhook-id derived from the deployment id; configuring again sends nothing more."""
    from atoms_otel.plugins.webhooks import plugin as webhook_plugin

    monkeypatch.setattr(webhook_plugin, "_announced", weakref.WeakKeyDictionary())
    for name, value in VERCEL.items():
        monkeypatch.setenv(name, value)
    webhooks.add_webhook(
        atoms_otel.WebhookConfig(receiver.url, event_types=["deployment_completed"], secret=SECRET)
    )
    capture_telemetry.reconfigure(
        service_name="atoms-mcp", service_version="1.4.0", plugins=[WebhookPlugin(webhooks)]
    )
    capture_telemetry.reconfigure(
        service_name="atoms-mcp", service_version="1.4.0", plugins=[WebhookPlugin(webhooks)]
    )
    request = receiver.wait_for(1)[0]
    assert webhooks.flush(timeout=5)
    assert len(receiver.requests) == 1 and verify_signature(SECRET, request.headers, request.body)
    body = request.json()
    assert body["event_type"] == "deployment_completed"
    assert body["data"] == {
        "deployment_id": "dpl_7Hc2",
        "version": "1.4.0",
        "vercel_env": "production",
        "url": "atoms-mcp-abc.vercel.app",
        "git_commit_sha": "4f2a9c1",
    }
    expected_id = "msg_" + hashlib.sha256(b"dpl_7Hc2").hexdigest()[:32]
    assert request.headers["webhook-id"] == body["id"] == expected_id  # the same for every cold start


def test_outside_vercel_no_deployment_event_is_sent(
    capture_telemetry: CapturedTelemetry, receiver: Receiver, webhooks: WebhookManager
) -> None:
    """Without VERCEL_DEPLOYMENT_ID configure() announces nothing."""
    webhooks.add_webhook(fast(receiver.url))
    capture_telemetry.reconfigure(plugins=[WebhookPlugin(webhooks)])
    assert webhooks.flush(timeout=2)
    assert receiver.requests == []
