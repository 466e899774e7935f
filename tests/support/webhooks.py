"""Webhook configs with short timeouts and backoff, so retry tests run in seconds."""

from __future__ import annotations

from typing import Any

from atoms_otel.plugins.webhooks import WebhookConfig


def fast(url: str, **overrides: Any) -> WebhookConfig:
    options: dict[str, Any] = {
        "timeout": 1.0,
        "max_retries": 2,
        "retry_backoff_s": 0.05,
        "max_backoff_s": 1.0,
    }
    options.update(overrides)
    return WebhookConfig(url, **options)
