"""The alert senders of :class:`WebhookManager`: ``send_*`` (async) and their sync twins.

Each builds one alert — message, severity, ``data`` and the key that coalesces its repeats — and
hands it to ``notify()``, which queues it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Hashable, Mapping
from typing import Any

from atoms_otel.base.events import Severity, health_severity
from atoms_otel.plugins.webhooks._delivery import WebhookDelivery
from atoms_otel.plugins.webhooks._model import WebhookEventType

__all__ = ["AlertSenders", "health_severity"]

_DEPLOYMENT_TYPES = {
    "started": WebhookEventType.DEPLOYMENT_STARTED,
    "completed": WebhookEventType.DEPLOYMENT_COMPLETED,
    "failed": WebhookEventType.DEPLOYMENT_FAILED,
}


class AlertSenders(ABC):
    """Mixed into :class:`WebhookManager`, which implements :meth:`notify`."""

    @abstractmethod
    def notify(
        self,
        event_type: WebhookEventType | str,
        message: str,
        *,
        severity: Severity = "info",
        data: Mapping[str, Any] | None = None,
        correlation_id: str | None = None,
        trace_id: str | None = None,
        dedup_key: Hashable | None = None,
    ) -> WebhookDelivery:
        """Build one alert and queue it."""

    async def send_error_alert(
        self,
        error_type: str,
        error_message: str,
        source: str,
        *,
        severity: Severity = "error",
        data: Mapping[str, Any] | None = None,
        correlation_id: str | None = None,
        trace_id: str | None = None,
    ) -> WebhookDelivery:
        """Alert ``error_occurred``: ``error_type`` (e.g. ``DatabaseError``) from ``source``."""
        return self.notify_error(
            error_type,
            error_message,
            source,
            severity=severity,
            data=data,
            correlation_id=correlation_id,
            trace_id=trace_id,
        )

    async def send_warning(
        self, message: str, source: str = "application", *, data: Mapping[str, Any] | None = None
    ) -> WebhookDelivery:
        """Alert ``warning_occurred``."""
        return self.notify_warning(message, source, data=data)

    async def send_health_alert(
        self,
        component: str,
        status: str,
        *,
        previous: str | None = None,
        message: str = "",
        critical: bool = False,
        data: Mapping[str, Any] | None = None,
    ) -> WebhookDelivery:
        """Alert ``health_status_changed``: ``component`` is now ``status`` (was ``previous``)."""
        return self.notify_health(
            component, status, previous=previous, message=message, critical=critical, data=data
        )

    async def send_performance_alert(
        self,
        metric: str,
        value: float,
        threshold: float,
        *,
        window_s: float | None = None,
        message: str | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> WebhookDelivery:
        """Alert ``performance_degraded``: ``metric`` is at ``value``, past ``threshold``."""
        return self.notify_performance(
            metric, value, threshold, window_s=window_s, message=message, data=data
        )

    async def send_deployment_event(
        self,
        status: WebhookEventType | str,
        *,
        deployment_id: str | None = None,
        version: str | None = None,
        url: str | None = None,
        message: str | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> WebhookDelivery:
        """Alert ``deployment_started``/``completed``/``failed`` (``status`` is the event type or
        ``"started"``, ``"completed"``, ``"failed"``)."""
        return self.notify_deployment(
            status, deployment_id=deployment_id, version=version, url=url, message=message, data=data
        )

    async def send_custom_event(
        self,
        event_name: str,
        message: str,
        *,
        severity: Severity = "info",
        data: Mapping[str, Any] | None = None,
    ) -> WebhookDelivery:
        """Alert ``custom`` with ``data["event"] = event_name``."""
        return self.notify_custom(event_name, message, severity=severity, data=data)

    # -- the same, for sync code and other threads ---------------------------------------------

    def notify_error(
        self,
        error_type: str,
        error_message: str,
        source: str,
        *,
        severity: Severity = "error",
        data: Mapping[str, Any] | None = None,
        correlation_id: str | None = None,
        trace_id: str | None = None,
    ) -> WebhookDelivery:
        """Sync twin of :meth:`send_error_alert`."""
        return self.notify(
            WebhookEventType.ERROR_OCCURRED,
            f"{error_type}: {error_message}" if error_message else error_type,
            severity=severity,
            data={"error_type": error_type, "error_message": error_message, "source": source, **(data or {})},
            correlation_id=correlation_id,
            trace_id=trace_id,
            dedup_key=("error", error_type, source, error_message),
        )

    def notify_warning(
        self, message: str, source: str = "application", *, data: Mapping[str, Any] | None = None
    ) -> WebhookDelivery:
        """Sync twin of :meth:`send_warning`."""
        return self.notify(
            WebhookEventType.WARNING_OCCURRED,
            message,
            severity="warning",
            data={"source": source, **(data or {})},
            dedup_key=("warning", source, message),
        )

    def notify_health(
        self,
        component: str,
        status: str,
        *,
        previous: str | None = None,
        message: str = "",
        critical: bool = False,
        data: Mapping[str, Any] | None = None,
    ) -> WebhookDelivery:
        """Sync twin of :meth:`send_health_alert`."""
        status, previous = _plain(status), _plain(previous) if previous is not None else None
        text = f"{component} is {status}" + (f" (was {previous})" if previous else "")
        return self.notify(
            WebhookEventType.HEALTH_STATUS_CHANGED,
            text + (f": {message}" if message else ""),
            severity=health_severity(status, critical),
            data={
                "component": component,
                "status": status,
                "previous": previous,
                "critical": critical,
                "detail": message,
                **(data or {}),
            },
            dedup_key=("health", component, status),
        )

    def notify_performance(
        self,
        metric: str,
        value: float,
        threshold: float,
        *,
        window_s: float | None = None,
        message: str | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> WebhookDelivery:
        """Sync twin of :meth:`send_performance_alert`."""
        over = f" over {window_s:g}s" if window_s else ""
        return self.notify(
            WebhookEventType.PERFORMANCE_DEGRADED,
            message or f"{metric} is {value:g}, past the threshold {threshold:g}{over}",
            severity="warning",
            data={
                "metric": metric,
                "value": value,
                "threshold": threshold,
                "window_s": window_s,
                **(data or {}),
            },
            dedup_key=("performance", metric),
        )

    def notify_deployment(
        self,
        status: WebhookEventType | str,
        *,
        deployment_id: str | None = None,
        version: str | None = None,
        url: str | None = None,
        message: str | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> WebhookDelivery:
        """Sync twin of :meth:`send_deployment_event`."""
        event_type = _DEPLOYMENT_TYPES.get(str(status)) or WebhookEventType(status)
        if event_type not in _DEPLOYMENT_TYPES.values():
            raise ValueError(f"not a deployment event: {status!r}")
        stage = event_type.value.removeprefix("deployment_")
        what = " ".join(p for p in ("deployment", deployment_id, version and f"({version})") if p)
        return self.notify(
            event_type,
            message or f"{what} {stage}",
            severity="error" if event_type is WebhookEventType.DEPLOYMENT_FAILED else "info",
            data={"deployment_id": deployment_id, "version": version, "url": url, **(data or {})},
            dedup_key=("deployment", event_type, deployment_id, version),
        )

    def notify_custom(
        self,
        event_name: str,
        message: str,
        *,
        severity: Severity = "info",
        data: Mapping[str, Any] | None = None,
    ) -> WebhookDelivery:
        """Sync twin of :meth:`send_custom_event`."""
        return self.notify(
            WebhookEventType.CUSTOM,
            message,
            severity=severity,
            data={"event": event_name, **(data or {})},
            dedup_key=("custom", event_name, message),
        )


def _plain(status: Any) -> str:
    """A status enum's value (``HealthStatus.DEGRADED`` → ``degraded``), or the text itself."""
    return str(getattr(status, "value", status))
