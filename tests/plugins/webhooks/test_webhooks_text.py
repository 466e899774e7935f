"""Free text in webhook alerts: credentials by format and lone surrogates, at a real receiver."""

from __future__ import annotations

from atoms_otel import WebhookEventType, WebhookManager, WebhookPayload
from atoms_otel.plugins.webhooks import WebhookFormat
from atoms_otel.testing import CapturedTelemetry
from tests.support.receiver import Receiver
from tests.support.webhooks import fast


async def test_an_alert_built_from_an_exception_carries_no_credential(
    capture_telemetry: CapturedTelemetry, receiver: Receiver, webhooks: WebhookManager
) -> None:
    """password=… in the message and a key in data's text arrive as [REDACTED], in JSON and Slack."""
    slack = Receiver()
    try:
        webhooks.add_webhook(fast(receiver.url, name="json"))
        webhooks.add_webhook(fast(slack.url, name="slack", format=WebhookFormat.SLACK))
        delivery = await webhooks.send_error_alert(
            "OperationalError", "connect failed: password=hunter2 host=db", "retry with sk_live_A1b2C3d4E5f6"
        )
        await delivery
        bodies = [r.body.decode("utf-8") for r in receiver.wait_for(1) + slack.wait_for(1)]
    finally:
        slack.stop()
    for body in bodies:
        assert "hunter2" not in body and "A1b2C3d4E5f6" not in body
        assert "password=[REDACTED]" in body


async def test_a_lone_surrogate_in_an_alert_is_delivered_as_a_replacement_character(
    capture_telemetry: CapturedTelemetry, receiver: Receiver, webhooks: WebhookManager
) -> None:
    """A "\\ud800" in the message does not lose the alert: the receiver gets U+FFFD."""
    webhooks.add_webhook(fast(receiver.url))
    delivery = await webhooks.send(
        WebhookPayload(WebhookEventType.ERROR_OCCURRED, "bad \ud800 text", data={"note": "x\udfff"})
    )
    await delivery
    body = receiver.wait_for(1)[0].json()
    assert body["message"] == "bad \ufffd text" and body["data"] == {"note": "x\ufffd"}
