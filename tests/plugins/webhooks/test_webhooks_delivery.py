"""Webhook delivery to real loopback receivers: payload, formats, signing, filtering, parallelism."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import threading
import time

import httpx
from opentelemetry import trace

from atoms_otel import (
    LogContext,
    WebhookClient,
    WebhookConfig,
    WebhookEventType,
    WebhookManager,
    WebhookPayload,
)
from atoms_otel.plugins.webhooks import WebhookPlugin, generate_webhook_secret, verify_signature
from atoms_otel.testing import CapturedTelemetry
from tests.support.receiver import Receiver, Reply
from tests.support.webhooks import fast

SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()


async def test_error_alert_carries_every_payload_field(
    capture_telemetry: CapturedTelemetry, receiver: Receiver, webhooks: WebhookManager
) -> None:
    """service, environment, severity, message, data, correlation and trace ids all arrive."""
    capture_telemetry.reconfigure(
        service_name="atoms-mcp", environment="staging", plugins=[WebhookPlugin(webhooks)]
    )
    webhooks.add_webhook(fast(receiver.url))
    with (
        LogContext(correlation_id="corr-123"),
        trace.get_tracer("t").start_as_current_span("request") as span,
    ):
        delivery = await webhooks.send_error_alert("DatabaseError", "Connection failed", "database")
        trace_id = format(span.get_span_context().trace_id, "032x")
    await delivery

    body = receiver.wait_for(1)[0].json()
    assert body == {
        "id": delivery.payload.id,
        "event_type": "error_occurred",
        "timestamp": body["timestamp"],
        "service": "atoms-mcp",
        "environment": "staging",
        "severity": "error",
        "message": "DatabaseError: Connection failed",
        "data": {"error_type": "DatabaseError", "error_message": "Connection failed", "source": "database"},
        "correlation_id": "corr-123",
        "trace_id": trace_id,
    }
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", body["timestamp"])


async def test_await_send_returns_once_queued(receiver: Receiver, webhooks: WebhookManager) -> None:
    """send_*() returns before the receiver answers; awaiting the delivery waits for the answer."""
    receiver.default = Reply(delay=0.8)
    webhooks.add_webhook(fast(receiver.url))
    started = time.perf_counter()
    delivery = await webhooks.send_warning("disk almost full")
    queued_after = time.perf_counter() - started

    assert queued_after < 0.2  # the receiver takes 0.8 s
    assert delivery.status == "queued"
    results = await delivery
    assert [r.outcome for r in results] == ["delivered"]
    assert delivery.status == "sent"


def test_notify_works_from_a_thread_without_an_event_loop(
    receiver: Receiver, webhooks: WebhookManager
) -> None:
    """Sync code in any thread queues alerts and can block on the outcome."""
    webhooks.add_webhook(fast(receiver.url))
    outcome: list[str] = []

    def worker() -> None:
        delivery = webhooks.notify_custom("job.finished", "nightly export done")
        outcome.extend(r.outcome for r in delivery.result(timeout=5))

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join(10)
    assert outcome == ["delivered"]
    assert receiver.wait_for(1)[0].json()["data"] == {"event": "job.finished"}


async def test_delivers_to_every_matching_webhook_in_parallel(webhooks: WebhookManager) -> None:
    """Two receivers that each take 1 s are both served in well under 2 s."""
    first, second = Receiver(), Receiver()
    try:
        for receiver in (first, second):
            receiver.default = Reply(delay=1.0)
            webhooks.add_webhook(fast(receiver.url, timeout=3))
        started = time.perf_counter()
        results = await (await webhooks.send_custom_event("ping", "hello"))
        elapsed = time.perf_counter() - started
    finally:
        first.stop()
        second.stop()
    assert sorted(r.outcome for r in results) == ["delivered", "delivered"]
    assert elapsed < 1.7


async def test_webhook_receives_only_its_event_types(webhooks: WebhookManager) -> None:
    """A webhook filtered to errors gets the error alert and not the health alert."""
    errors_only, everything = Receiver(), Receiver()
    try:
        webhooks.add_webhook(fast(errors_only.url, event_types=[WebhookEventType.ERROR_OCCURRED]))
        webhooks.add_webhook(fast(everything.url))
        await (await webhooks.send_health_alert("database", "degraded", previous="healthy"))
        await (await webhooks.send_error_alert("ValueError", "bad input", "api"))
        everything.wait_for(2)
        received = [r.json()["event_type"] for r in errors_only.requests]
    finally:
        errors_only.stop()
        everything.stop()
    assert received == ["error_occurred"]


async def test_alert_no_webhook_takes_is_unmatched(receiver: Receiver, webhooks: WebhookManager) -> None:
    """An event type no webhook subscribes to is not queued at all."""
    webhooks.add_webhook(fast(receiver.url, event_types=["deployment_failed"]))
    delivery = await webhooks.send_warning("nothing listens for warnings")
    assert delivery.status == "unmatched"
    assert webhooks.pending == 0


async def test_custom_headers_are_sent(receiver: Receiver, webhooks: WebhookManager) -> None:
    """Headers from the config reach the receiver, with a JSON content type."""
    webhooks.add_webhook(fast(receiver.url, headers={"Authorization": "Bearer t0k3n", "X-Team": "infra"}))
    await (await webhooks.send_warning("quota low"))
    headers = receiver.wait_for(1)[0].headers
    assert headers["authorization"] == "Bearer t0k3n"
    assert headers["x-team"] == "infra"
    assert headers["content-type"] == "application/json"


async def test_signature_verifies_with_an_independent_hmac(
    receiver: Receiver, webhooks: WebhookManager
) -> None:
    """webhook-signature is v1,base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}")) per Standard Webhooks."""
    webhooks.add_webhook(fast(receiver.url, secret=SECRET))
    delivery = await webhooks.send_error_alert("KeyError", "missing", "cache")
    await delivery
    request = receiver.wait_for(1)[0]

    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    signed = (
        f"{request.headers['webhook-id']}.{request.headers['webhook-timestamp']}.".encode() + request.body
    )
    expected = "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    assert request.headers["webhook-id"] == delivery.payload.id
    assert abs(int(request.headers["webhook-timestamp"]) - time.time()) < 10
    assert request.headers["webhook-signature"] == expected


async def test_signature_verifies_with_the_reference_library(
    receiver: Receiver, webhooks: WebhookManager
) -> None:
    """The Standard Webhooks reference implementation accepts our signed requests."""
    from standardwebhooks.webhooks import Webhook

    webhooks.add_webhook(fast(receiver.url, secret=SECRET, format="standard_webhooks"))
    await (await webhooks.send_warning("interop"))
    request = receiver.wait_for(1)[0]
    verified = Webhook(SECRET).verify(request.body.decode(), dict(request.headers))
    assert verified["type"] == "warning.occurred"


async def test_verify_signature_accepts_signed_and_rejects_tampered_bodies(
    receiver: Receiver, webhooks: WebhookManager
) -> None:
    """The receiver-side helper accepts the request as sent and refuses a changed body or secret."""
    webhooks.add_webhook(fast(receiver.url, secret=SECRET))
    await (await webhooks.send_warning("signed"))
    request = receiver.wait_for(1)[0]
    assert verify_signature(SECRET, request.headers, request.body)
    assert not verify_signature(SECRET, request.headers, request.body.replace(b"signed", b"forged"))
    assert not verify_signature(generate_webhook_secret(), request.headers, request.body)


async def test_slack_format_has_text_and_blocks(receiver: Receiver, webhooks: WebhookManager) -> None:
    """Slack gets a fallback text and Block Kit blocks with the fields."""
    webhooks.add_webhook(fast(receiver.url, format="slack"))
    await (await webhooks.send_error_alert("TimeoutError", "upstream <slow>", "payments"))
    body = receiver.wait_for(1)[0].json()
    assert body["text"].startswith("[ERROR] unknown_service (development): TimeoutError: upstream <slow>")
    assert [block["type"] for block in body["blocks"]] == ["header", "section", "section", "context"]
    assert "upstream &lt;slow&gt;" in body["blocks"][1]["text"]["text"]
    fields = [f["text"] for f in body["blocks"][2]["fields"]]
    assert fields[:2] == ["*severity*\nerror", "*error_type*\nTimeoutError"]


async def test_standard_webhooks_envelope(receiver: Receiver, webhooks: WebhookManager) -> None:
    """The envelope is {type, timestamp, data} with the generic object as data."""
    webhooks.add_webhook(fast(receiver.url, format="standard_webhooks"))
    delivery = await webhooks.send_health_alert("database", "unhealthy", previous="healthy", critical=True)
    await delivery
    body = receiver.wait_for(1)[0].json()
    assert set(body) == {"type", "timestamp", "data"}
    assert body["type"] == "health.status_changed"
    assert body["data"]["id"] == delivery.payload.id
    assert body["data"]["severity"] == "critical"
    assert body["data"]["data"]["component"] == "database"


async def test_secret_looking_data_is_redacted(receiver: Receiver, webhooks: WebhookManager) -> None:
    """Values under secret-looking keys in data are scrubbed as in logs."""
    webhooks.add_webhook(fast(receiver.url))
    await (await webhooks.send_warning("login failed", data={"api_key": "sk-live-123", "user": "ann"}))
    data = receiver.wait_for(1)[0].json()["data"]
    assert data == {"source": "application", "api_key": "[REDACTED]", "user": "ann"}


async def test_deliveries_are_counted_by_outcome(
    capture_telemetry: CapturedTelemetry, receiver: Receiver, webhooks: WebhookManager
) -> None:
    """webhook_deliveries_total counts each delivery with its outcome and event type."""
    webhooks.add_webhook(fast(receiver.url))
    await (await webhooks.send_warning("one"))
    await (await webhooks.send_warning("two"))
    assert (
        capture_telemetry.metric_value(
            "webhook_deliveries_total", outcome="delivered", event_type="warning_occurred"
        )
        == 2
    )
    assert "webhook_deliveries_total{" in capture_telemetry.prometheus_text()


async def test_own_delivery_requests_are_not_traced(
    capture_telemetry: CapturedTelemetry, receiver: Receiver, webhooks: WebhookManager
) -> None:
    """With httpx instrumented, the app's own call makes a client span and the webhook POST none."""
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    instrumentor = HTTPXClientInstrumentor()
    instrumentor.instrument()
    try:
        webhooks.add_webhook(fast(receiver.url))
        await (await webhooks.send_warning("not traced"))
        async with httpx.AsyncClient() as client:
            await client.post(receiver.url, content=b"{}")
    finally:
        instrumentor.uninstrument()
    receiver.wait_for(2)
    client_spans = [s for s in capture_telemetry.spans if s.kind is trace.SpanKind.CLIENT]
    assert len(client_spans) == 1
    assert "webhook-id" not in receiver.requests[1].headers  # the traced one is the app's own


def test_payload_id_is_stable_and_unique() -> None:
    """Each payload has its own msg_ id (the receiver's idempotency key)."""
    first = WebhookPayload(WebhookEventType.CUSTOM, "a")
    second = WebhookPayload(WebhookEventType.CUSTOM, "a")
    assert first.id.startswith("msg_")
    assert first.id != second.id
    assert first.to_dict()["id"] == first.id


def test_config_repr_hides_url_headers_and_secret() -> None:
    """repr shows the name and the header names, never the URL path, header values or secret."""
    config = WebhookConfig(
        "https://user:pw@hooks.example.com/services/T0/B0/XYZ?token=abc",
        headers={"Authorization": "Bearer zzz"},
        secret=SECRET,
    )
    text = repr(config)
    for leaked in ("XYZ", "abc", "pw", "zzz", SECRET):
        assert leaked not in text
    assert "hooks.example.com#" in text
    assert "Authorization" in text


async def test_webhook_client_delivers_on_its_own(receiver: Receiver) -> None:
    """WebhookClient works without a manager: it opens and closes its own HTTP client."""
    receiver.script(Reply(503))
    payload = WebhookPayload(WebhookEventType.CUSTOM, "direct", service="svc", environment="dev")
    async with WebhookClient(fast(receiver.url, name="direct-hook")) as client:
        result = await client.send(payload)
    assert (result.webhook, result.outcome, result.attempts, result.status_code) == (
        "direct-hook",
        "delivered",
        2,
        200,
    )
    assert receiver.wait_for(2)[1].json()["message"] == "direct"


async def test_deployment_events_name_their_stage(receiver: Receiver, webhooks: WebhookManager) -> None:
    """A failed deployment is an error-severity deployment_failed alert with its id and version."""
    webhooks.add_webhook(fast(receiver.url, event_types=["deployment_failed", "deployment_completed"]))
    await (await webhooks.send_deployment_event("failed", deployment_id="dpl_42", version="1.4.0"))
    body = receiver.wait_for(1)[0].json()
    assert body["event_type"] == "deployment_failed"
    assert body["severity"] == "error"
    assert body["message"] == "deployment dpl_42 (1.4.0) failed"
    assert body["data"] == {"deployment_id": "dpl_42", "version": "1.4.0", "url": None}


async def test_oversized_alerts_are_bounded(receiver: Receiver, webhooks: WebhookManager) -> None:
    """A huge message is cut and huge data replaced by a note: the body stays under 256 KiB."""
    webhooks.add_webhook(fast(receiver.url))
    await (await webhooks.send_warning("x" * 100_000, data={"dump": "y" * 1_000_000}))
    request = receiver.wait_for(1)[0]
    body = request.json()
    assert len(request.body) <= 256 * 1024
    assert len(body["message"]) == 4000
    assert body["message"].endswith("…")
    assert body["data"] == {"truncated": body["data"]["truncated"]}
    assert "over 262144" in body["data"]["truncated"]
