"""Webhook alerts: signed, retried, coalesced, delivered in the background.

>>> from atoms_otel import configure_vercel_webhook, webhook_manager, WebhookEventType
>>> configure_vercel_webhook(
...     webhook_url="https://hooks.vercel.com/abc123",
...     event_types=[WebhookEventType.ERROR_OCCURRED],
... )
>>> await webhook_manager.send_error_alert(
...     error_type="DatabaseError", error_message="Connection failed", source="database"
... )

``configure(webhook_url=..., webhook_secret=...)`` (or ``ATOMS_OTEL_WEBHOOK_URL`` /
``ATOMS_OTEL_WEBHOOK_SECRET``) registers a webhook at startup, and the webhook plugin turns
unhandled request exceptions, health transitions and performance degradation into alerts.
See ``docs/webhooks.md``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from atoms_otel.plugins.webhooks._client import WebhookClient, parse_retry_after
from atoms_otel.plugins.webhooks._delivery import DeliveryStatus, WebhookDelivery
from atoms_otel.plugins.webhooks._manager import WebhookManager
from atoms_otel.plugins.webhooks._model import (
    DeliveryOutcome,
    DeliveryResult,
    WebhookConfig,
    WebhookEventType,
    WebhookFormat,
    WebhookPayload,
)
from atoms_otel.plugins.webhooks._senders import health_severity
from atoms_otel.plugins.webhooks._signing import generate_webhook_secret, verify_signature
from atoms_otel.plugins.webhooks._worker import deliveries_counter
from atoms_otel.plugins.webhooks.plugin import AlertingLogHandler, WebhookPlugin

__all__ = [
    "AlertingLogHandler",
    "DeliveryOutcome",
    "DeliveryResult",
    "DeliveryStatus",
    "WebhookClient",
    "WebhookConfig",
    "WebhookDelivery",
    "WebhookEventType",
    "WebhookFormat",
    "WebhookManager",
    "WebhookPayload",
    "WebhookPlugin",
    "configure_vercel_webhook",
    "deliveries_counter",
    "generate_webhook_secret",
    "health_severity",
    "parse_retry_after",
    "verify_signature",
    "webhook_manager",
]

webhook_manager = WebhookManager()
"""The process-wide manager: ``configure()``'s webhook and the webhook plugin use it."""


def configure_vercel_webhook(
    webhook_url: str,
    event_types: Iterable[WebhookEventType | str] | None = None,
    *,
    secret: str | None = None,
    headers: Mapping[str, str] | None = None,
    manager: WebhookManager | None = None,
) -> WebhookConfig:
    """Register a webhook (e.g. a Vercel-hosted receiver) on ``webhook_manager`` and return it.

    ``event_types`` defaults to every type. The body is the generic JSON object; with ``secret``
    it is signed (Standard Webhooks). Calling it again with the same URL replaces that webhook.
    """
    target = manager if manager is not None else webhook_manager
    config = WebhookConfig(webhook_url, event_types=event_types, secret=secret, headers=dict(headers or {}))
    return target.add_webhook(config)
