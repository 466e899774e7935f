"""The webhook data model: event types, formats, a webhook's configuration, a payload, a result."""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final, Literal

from atoms_otel.base.events import Severity
from atoms_otel.base.settings import SECRET, ConfigurationError
from atoms_otel.plugins.webhooks._signing import parse_secret
from atoms_otel.plugins.webhooks._urls import display_name, validate_url

__all__ = [
    "DeliveryOutcome",
    "DeliveryResult",
    "WebhookConfig",
    "WebhookEventType",
    "WebhookFormat",
    "WebhookPayload",
    "rfc3339",
]


class WebhookEventType(StrEnum):
    """What an alert is about. A webhook receives the types in its ``event_types`` (all by default)."""

    DEPLOYMENT_STARTED = "deployment_started"
    DEPLOYMENT_COMPLETED = "deployment_completed"
    DEPLOYMENT_FAILED = "deployment_failed"
    ERROR_OCCURRED = "error_occurred"
    WARNING_OCCURRED = "warning_occurred"
    HEALTH_STATUS_CHANGED = "health_status_changed"
    PERFORMANCE_DEGRADED = "performance_degraded"
    CUSTOM = "custom"

    @property
    def dotted(self) -> str:
        """The Standard Webhooks ``type`` (``error.occurred``, ``health.status_changed``, ...)."""
        return _DOTTED[self]


_DOTTED: Final = {
    WebhookEventType.DEPLOYMENT_STARTED: "deployment.started",
    WebhookEventType.DEPLOYMENT_COMPLETED: "deployment.completed",
    WebhookEventType.DEPLOYMENT_FAILED: "deployment.failed",
    WebhookEventType.ERROR_OCCURRED: "error.occurred",
    WebhookEventType.WARNING_OCCURRED: "warning.occurred",
    WebhookEventType.HEALTH_STATUS_CHANGED: "health.status_changed",
    WebhookEventType.PERFORMANCE_DEGRADED: "performance.degraded",
    WebhookEventType.CUSTOM: "custom",
}


class WebhookFormat(StrEnum):
    """How a payload is written on the wire (see docs/webhooks.md for examples)."""

    JSON = "json"
    """The generic JSON object: ``id``, ``event_type``, ``timestamp``, ``service``, ... (default)."""
    SLACK = "slack"
    """A Slack incoming-webhook message: ``text`` plus Block Kit ``blocks``."""
    STANDARD_WEBHOOKS = "standard_webhooks"
    """The Standard Webhooks envelope ``{"type", "timestamp", "data"}``; ``data`` is the generic object."""


# One severity scale for events and alerts (atoms_otel.base.events).

DeliveryOutcome = Literal["delivered", "failed", "rejected", "gone", "blocked", "cancelled"]
"""How one delivery to one webhook ended (also the ``outcome`` label of ``webhook_deliveries_total``,
which adds ``dropped`` and ``coalesced`` for alerts that were never sent)."""


def rfc3339(epoch_s: float) -> str:
    """``2024-05-01T12:00:00.123Z``."""
    moment = datetime.fromtimestamp(epoch_s, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _event_types(value: Iterable[WebhookEventType | str] | None) -> frozenset[WebhookEventType] | None:
    if value is None:
        return None
    if isinstance(value, str | WebhookEventType):
        value = [value]
    try:
        return frozenset(WebhookEventType(v) for v in value)
    except ValueError as exc:
        choices = ", ".join(t.value for t in WebhookEventType)
        raise ConfigurationError(f"WebhookConfig.event_types: {exc}; expected any of {choices}") from None


def _check_header(name: str, value: str) -> None:
    if not name or any(c in name for c in " :\r\n\t") or any(c in value for c in "\r\n\0"):
        # the value is never shown: headers carry credentials
        raise ConfigurationError(f"WebhookConfig.headers: invalid header {name!r} (or its value)")


@dataclass(frozen=True, repr=False, eq=False)
class WebhookConfig:
    """One webhook: where to send, which events, how to sign, and how hard to try.

    >>> WebhookConfig("https://hooks.slack.com/services/T0/B0/XYZ", format="slack",
    ...               event_types=[WebhookEventType.ERROR_OCCURRED])

    Invalid values raise :class:`~atoms_otel.ConfigurationError` naming the field. The URL, the
    headers and the secret are never logged or shown in ``repr``; logs and errors use :attr:`name`.
    """

    url: str
    """``http://`` or ``https://`` URL. Credentials in it are sent but never logged."""
    event_types: Iterable[WebhookEventType | str] | None = None
    """Event types this webhook receives; ``None`` means all of them."""
    headers: Mapping[str, str] = field(default_factory=dict)
    """Extra request headers (e.g. ``Authorization``). Never logged."""
    secret: str | None = None
    """Standard Webhooks signing secret, ``whsec_<base64 of 24-64 random bytes>``."""
    timeout: float = 5.0
    """Seconds one attempt may take, connection to response headers."""
    max_retries: int = 3
    """Retries after the first attempt, on network errors, timeouts, 5xx and 429."""
    format: WebhookFormat | str = WebhookFormat.JSON
    """``json`` (default), ``slack`` or ``standard_webhooks``."""
    name: str | None = None
    """Shown in logs and results; defaults to the host and a short hash of the URL."""
    retry_backoff_s: float = 0.5
    """First backoff; doubles each retry (with jitter), up to :attr:`max_backoff_s`."""
    max_backoff_s: float = 30.0
    max_retry_after_s: float = 60.0
    """A ``Retry-After`` longer than this ends the delivery as failed instead of holding the alert."""

    def __post_init__(self) -> None:
        set_ = object.__setattr__  # frozen: normalise once, here
        set_(self, "url", validate_url(self.url, "WebhookConfig.url"))
        types = _event_types(self.event_types)
        set_(self, "_types", types)
        set_(self, "event_types", types)  # a generator would be spent: keep the normalised set
        headers = dict(self.headers or {})
        for key, value in headers.items():
            if not isinstance(key, str) or not isinstance(value, str):
                raise ConfigurationError("WebhookConfig.headers: names and values must be strings")
            _check_header(key, value)
        set_(self, "headers", headers)
        if self.secret is not None:
            parse_secret(self.secret, "WebhookConfig.secret")
        try:
            set_(self, "format", WebhookFormat(self.format))
        except ValueError:
            choices = ", ".join(f.value for f in WebhookFormat)
            raise ConfigurationError(
                f"WebhookConfig.format: {self.format!r} is not one of {choices}"
            ) from None
        for name, low, high in (
            ("timeout", 0.01, 300.0),
            ("retry_backoff_s", 0.0, 3600.0),
            ("max_backoff_s", 0.0, 3600.0),
            ("max_retry_after_s", 0.0, 86400.0),
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
                raise ConfigurationError(f"WebhookConfig.{name}: expected a number")
            if not low <= value <= high:
                raise ConfigurationError(f"WebhookConfig.{name}: expected a number between {low} and {high}")
        if isinstance(self.max_retries, bool) or not isinstance(self.max_retries, int):
            raise ConfigurationError("WebhookConfig.max_retries: expected an integer")
        if not 0 <= self.max_retries <= 20:
            raise ConfigurationError("WebhookConfig.max_retries: expected an integer between 0 and 20")
        set_(self, "name", self.name or display_name(self.url))

    @property
    def types(self) -> frozenset[WebhookEventType] | None:
        """The event types this webhook receives, normalised (``None``: all)."""
        types: frozenset[WebhookEventType] | None = self.__dict__["_types"]
        return types

    def accepts(self, event_type: WebhookEventType) -> bool:
        types = self.types
        return types is None or event_type in types

    def __repr__(self) -> str:
        types = sorted(t.value for t in self.types) if self.types is not None else "all"
        return (
            f"WebhookConfig(name={self.name!r}, format={self.format!s}, event_types={types}, "
            f"headers={_masked(self.headers)}, secret={SECRET if self.secret else None})"
        )


def _masked(headers: Mapping[str, str]) -> str:
    """Header names with their values hidden: they are often credentials."""
    return "{" + ", ".join(f"{name!r}: {SECRET}" for name in sorted(headers)) + "}"


def _new_id() -> str:
    return f"msg_{uuid.uuid4().hex}"


@dataclass(frozen=True)
class WebhookPayload:
    """One alert, whatever the format. ``id`` stays the same across retries (the receiver's
    idempotency key, sent as ``webhook-id``)."""

    event_type: WebhookEventType
    message: str
    severity: Severity = "info"
    data: Mapping[str, Any] = field(default_factory=dict)
    service: str = ""
    environment: str = ""
    correlation_id: str | None = None
    trace_id: str | None = None
    id: str = field(default_factory=_new_id)
    timestamp: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        """The generic JSON object (the ``json`` format, and ``data`` of the Standard Webhooks one)."""
        return {
            "id": self.id,
            "event_type": self.event_type.value,
            "timestamp": rfc3339(self.timestamp),
            "service": self.service,
            "environment": self.environment,
            "severity": self.severity,
            "message": self.message,
            "data": dict(self.data),
            "correlation_id": self.correlation_id,
            "trace_id": self.trace_id,
        }


@dataclass(frozen=True)
class DeliveryResult:
    """How the delivery of one payload to one webhook ended."""

    webhook: str
    """The webhook's :attr:`WebhookConfig.name`."""
    outcome: DeliveryOutcome
    attempts: int = 0
    status_code: int | None = None
    """The last HTTP status received, if any."""
    error: str | None = None
    """Why it did not succeed (never contains the URL or headers)."""

    @property
    def ok(self) -> bool:
        return self.outcome == "delivered"
