"""The webhook plugin: turns telemetry events (and, optionally, error logs) into webhook alerts.

configure() runs it on every setup. It registers the webhook from ``webhook_url`` /
``webhook_secret`` (``ATOMS_OTEL_WEBHOOK_URL`` / ``ATOMS_OTEL_WEBHOOK_SECRET``) and subscribes to:

- ``error.unhandled`` (an unhandled request exception) → ``error_occurred``, with the request's
  correlation id and trace id;
- ``health.changed`` (a component's status changed) → ``health_status_changed``;
- ``performance.degraded`` (a windowed threshold was crossed) → ``performance_degraded``.

``performance.slow_request`` is not alerted: one slow request is a per-request symptom already in
the logs and the latency histogram, and paging on each would be noise; ``performance.degraded`` is
the aggregated signal. With ``webhook_log_level`` set, log records at or above it also raise
``error_occurred`` (see :class:`AlertingLogHandler` for what is left out to avoid loops).
Events for which no webhook is registered cost one check; webhooks added later in code (for
example with ``configure_vercel_webhook``) receive these alerts too.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import weakref
from collections.abc import Callable
from typing import Any, Final

from atoms_otel.base import guard as _guard
from atoms_otel.base.events import SEVERITIES, HealthChanged, PerformanceDegraded, Severity, UnhandledError
from atoms_otel.base.settings import Settings
from atoms_otel.core.telemetry import Telemetry
from atoms_otel.plugins.webhooks._manager import WebhookManager
from atoms_otel.plugins.webhooks._model import WebhookConfig, WebhookEventType, WebhookPayload

__all__ = ["AlertingLogHandler", "WebhookPlugin"]

# Loggers whose records never become alerts: our own delivery logs and the HTTP client's would
# feed back into deliveries.
_IGNORED_LOGGERS: Final = ("atoms_otel.webhooks", "httpx", "httpcore", "opentelemetry")
# The servers' "Exception in ASGI application" record repeats an unhandled request exception that
# the error middleware already reports as ``error.unhandled``.
_SERVER_ERROR_LOGGERS: Final = frozenset({"uvicorn.error", "gunicorn.error", "hypercorn.error"})
# Deployments each manager has announced: one deployment_completed per cold start.
_announced: weakref.WeakKeyDictionary[WebhookManager, set[str]] = weakref.WeakKeyDictionary()


def _severity(value: str, default: Severity) -> Severity:
    return next((s for s in SEVERITIES if s == value.lower()), default)


class AlertingLogHandler(logging.Handler):
    """Raises ``error_occurred`` for log records at or above its level.

    Left out, so that alerts never feed back into alerts: records from ``atoms_otel.webhooks``,
    ``httpx``, ``httpcore`` and ``opentelemetry``, atoms_otel's own warnings about webhooks, and
    records emitted on the delivery thread or while this handler is already running. Also left
    out: the servers' tracebacks for unhandled request exceptions (alerted from the
    ``error.unhandled`` event instead). Repeats of one log call site are coalesced like any alert.
    """

    def __init__(self, manager: WebhookManager, level: int = logging.ERROR) -> None:
        super().__init__(level)
        self._manager = manager
        self._busy = threading.local()

    def emit(self, record: logging.LogRecord) -> None:
        name = record.name
        if name.startswith(_IGNORED_LOGGERS) or getattr(self._busy, "active", False):
            return
        if str(getattr(record, "atoms_otel_component", "")).startswith("webhooks"):
            return  # our own warnings (e.g. "the webhook queue is full") logged on "atoms_otel"
        if record.exc_info and name in _SERVER_ERROR_LOGGERS:
            return
        manager = self._manager
        if not manager.wants(WebhookEventType.ERROR_OCCURRED) or manager.is_worker_thread():
            return
        self._busy.active = True
        try:
            exc = record.exc_info[1] if record.exc_info else None
            error_type = type(exc).__name__ if exc is not None else record.levelname
            message = record.getMessage()
            data: dict[str, Any] = {"error_type": error_type, "source": f"log:{name}", "logger": name}
            if exc is not None:
                data["error_message"] = str(exc)
            manager.notify(
                WebhookEventType.ERROR_OCCURRED,
                f"{error_type}: {message}" if exc is not None else message,
                severity="critical" if record.levelno >= logging.CRITICAL else "error",
                data=data,
                dedup_key=("log", name, error_type, str(record.msg)),
            )
        except Exception as exc:
            _guard.report_internal_error("webhooks log handler", exc)
        finally:
            self._busy.active = False


class WebhookPlugin:
    """Connects the event hub (and optionally logging) to a :class:`WebhookManager`.

    configure() installs one on the module-level ``webhook_manager``; tests and applications with
    their own manager may pass ``configure(plugins=[WebhookPlugin(manager)])``.
    """

    def __init__(self, manager: WebhookManager, *, log_level: int | None = None) -> None:
        self.manager = manager
        self._log_level = log_level
        self._unsubscribe: list[Callable[[], None]] = []
        self._handler: AlertingLogHandler | None = None
        self._config: WebhookConfig | None = None

    def setup(self, telemetry: Telemetry) -> None:
        settings = telemetry.settings
        if settings.webhook_url:
            self._config = self.manager.add_webhook(
                WebhookConfig(settings.webhook_url, secret=settings.webhook_secret)
            )
        events = telemetry.events
        self.manager.events = events
        self.manager.identity = (settings.service_name, settings.environment)
        self._unsubscribe = [
            events.subscribe(UnhandledError, self._on_error),
            events.subscribe(HealthChanged, self._on_health),
            events.subscribe(PerformanceDegraded, self._on_performance),
        ]
        level = self._log_level if self._log_level is not None else settings.webhook_log_level
        if level is not None:
            self._handler = AlertingLogHandler(self.manager, level)
            logging.getLogger().addHandler(self._handler)
        self._announce_deployment(settings)

    def _announce_deployment(self, settings: Settings) -> None:
        """On Vercel: one ``deployment_completed`` per deployment and process (cold start), whose
        ``webhook-id`` is derived from the deployment id so receivers can deduplicate."""
        deployment = settings.vercel_deployment_id
        announced = _announced.setdefault(self.manager, set())
        if not deployment or deployment in announced:
            return
        announced.add(deployment)
        data = {
            "deployment_id": deployment,
            "version": settings.service_version,
            "vercel_env": settings.vercel_env,
            "url": settings.vercel_url,
            "git_commit_sha": settings.vercel_git_commit_sha,
        }
        payload = WebhookPayload(
            WebhookEventType.DEPLOYMENT_COMPLETED,
            f"deployment {deployment} ({settings.service_version}) is serving",
            data={k: v for k, v in data.items() if v is not None},
            id="msg_" + hashlib.sha256(deployment.encode()).hexdigest()[:32],
        )
        self.manager.submit(payload, dedup_key=("deployment", deployment))

    def shutdown(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe = []
        if self._handler is not None:
            logging.getLogger().removeHandler(self._handler)
            self._handler = None
        self.manager.shutdown()
        self.manager.events = None
        if self._config is not None:
            self.manager.remove_webhook(self._config)
            self._config = None

    def force_flush(self, timeout_s: float) -> bool:
        """Wait until queued alerts are delivered (``atoms_otel.force_flush()``, serverless)."""
        return self.manager.flush(timeout_s)

    # -- events --------------------------------------------------------------------------------

    def _on_error(self, event: UnhandledError) -> None:
        if not self.manager.wants(WebhookEventType.ERROR_OCCURRED):
            return
        source = f"{event.method} {event.route}" if event.method and event.route else "http"
        self.manager.notify_error(
            event.error_type,
            event.message.removeprefix(f"{event.error_type}: "),
            source,
            severity=_severity(event.severity, "error"),
            data={k: v for k, v in event.data.items() if k != "error_type"},
            correlation_id=event.correlation_id,
            trace_id=event.trace_id,
        )

    def _on_health(self, event: HealthChanged) -> None:
        if not self.manager.wants(WebhookEventType.HEALTH_STATUS_CHANGED):
            return
        self.manager.notify_health(
            event.component,
            event.status,
            previous=event.previous,
            message=event.detail or event.message,
            critical=event.critical,
        )

    def _on_performance(self, event: PerformanceDegraded) -> None:
        if not self.manager.wants(WebhookEventType.PERFORMANCE_DEGRADED):
            return
        self.manager.notify_performance(
            event.metric,
            event.value,
            event.threshold,
            window_s=event.window_s,
            message=event.message or None,
        )
