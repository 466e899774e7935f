"""``WebhookManager``: many webhooks, one bounded queue, one background delivery thread.

Sending never blocks the caller: ``send_*`` (async) and :meth:`WebhookManager.notify` (sync, any
thread) put the alert on a bounded queue and return a :class:`WebhookDelivery`. A daemon thread
runs its own asyncio loop and delivers each alert to every matching webhook in parallel, at most
``max_concurrency`` alerts at a time. The thread starts on the first alert, and again after
:meth:`shutdown` if alerts keep coming.

Limits: the queue holds ``queue_size`` alerts; when full, the oldest is dropped (status
``dropped``, counted). Identical alerts within ``coalesce_window_s`` are coalesced. ``shutdown()``
sends what is queued until its deadline, then cancels the rest (status ``cancelled``, counted).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import threading
import time
import weakref
from collections.abc import Hashable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from opentelemetry import trace as trace_api

from atoms_otel.base import guard as _guard
from atoms_otel.base.context import get_correlation_id
from atoms_otel.base.events import SEVERITIES, EventBus, Severity
from atoms_otel.base.settings import ConfigurationError
from atoms_otel.otel.metrics import Counter
from atoms_otel.plugins.webhooks._coalesce import Coalescer
from atoms_otel.plugins.webhooks._delivery import WebhookDelivery
from atoms_otel.plugins.webhooks._model import (
    WebhookConfig,
    WebhookEventType,
    WebhookPayload,
)
from atoms_otel.plugins.webhooks._senders import AlertSenders
from atoms_otel.plugins.webhooks._urls import AddressPolicy
from atoms_otel.plugins.webhooks._worker import DeliveryWorker, Item

if TYPE_CHECKING:
    pass

__all__ = ["WebhookManager"]

_logger = logging.getLogger("atoms_otel.webhooks")
_managers: weakref.WeakSet[WebhookManager] = weakref.WeakSet()
_counter: Counter | None = None


def _positive(name: str, value: Any, *, integer: bool = False, allow_zero: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, int if integer else int | float):
        raise ConfigurationError(f"WebhookManager {name}: expected {'an integer' if integer else 'a number'}")
    if math.isnan(value) or value < 0 or (value == 0 and not allow_zero):
        raise ConfigurationError(f"WebhookManager {name}: expected a number {'>=' if allow_zero else '>'} 0")


class WebhookManager(DeliveryWorker, AlertSenders):
    """Sends alerts to every registered webhook that takes their event type.

    >>> manager = WebhookManager()
    >>> manager.add_webhook(WebhookConfig("https://example.com/hook", secret=secret))
    >>> delivery = await manager.send_error_alert("DatabaseError", "Connection failed", "database")
    >>> results = await delivery          # optional: wait until the webhooks answered

    Every ``send_*`` returns once the alert is queued — it never waits for the network and never
    raises because a receiver is down. Most applications use the module-level ``webhook_manager``.
    """

    def __init__(
        self,
        *,
        queue_size: int = 1000,
        max_concurrency: int = 8,
        coalesce_window_s: float = 60.0,
        shutdown_timeout_s: float = 5.0,
        block_private_addresses: bool = False,
        ssrf_allowed_networks: Iterable[str] = (),
    ) -> None:
        _positive("queue_size", queue_size, integer=True)
        _positive("max_concurrency", max_concurrency, integer=True)
        _positive("coalesce_window_s", coalesce_window_s, allow_zero=True)
        _positive("shutdown_timeout_s", shutdown_timeout_s, allow_zero=True)
        self.queue_size = queue_size
        self.max_concurrency = max_concurrency
        self.shutdown_timeout_s = float(shutdown_timeout_s)
        self.policy = AddressPolicy.build(block_private_addresses, ssrf_allowed_networks)
        self._coalescer = Coalescer(float(coalesce_window_s))
        self._webhooks: tuple[WebhookConfig, ...] = ()
        self._disabled: dict[WebhookConfig, str] = {}
        self._failing: set[str] = set()
        self._atexit_registered = False
        self.events: EventBus | None = None
        """Where each delivery's :class:`WebhookOutcome` is published (the webhook plugin attaches
        ``telemetry.events``)."""
        self.identity: tuple[str, str] = ("unknown_service", "development")
        """The ``service`` and ``environment`` alerts carry (the webhook plugin sets them)."""
        self._reset_runtime()
        _managers.add(self)

    def __repr__(self) -> str:
        names = [w.name for w in self._webhooks]
        return f"WebhookManager(webhooks={names!r}, pending={self.pending}, queue_size={self.queue_size})"

    # -- webhooks ------------------------------------------------------------------------------

    @property
    def webhooks(self) -> tuple[WebhookConfig, ...]:
        """The active webhooks."""
        return self._webhooks

    @property
    def disabled_webhooks(self) -> dict[WebhookConfig, str]:
        """Webhooks switched off (a receiver answered 410 Gone), with the reason."""
        return dict(self._disabled)

    def add_webhook(self, config: WebhookConfig) -> WebhookConfig:
        """Register ``config``; it replaces a webhook with the same URL, and re-enables a disabled
        one. With the SSRF guard on, a URL that is or resolves to a non-public address raises
        :class:`ConfigurationError`."""
        if not isinstance(config, WebhookConfig):
            raise TypeError(f"add_webhook() expects a WebhookConfig, got {type(config).__name__}")
        self.policy.check_at_configuration(config.url, "WebhookConfig.url")
        with self._lock:
            for disabled in [c for c in self._disabled if c is config or c.url == config.url]:
                del self._disabled[disabled]
            self._webhooks = (*(w for w in self._webhooks if w.url != config.url), config)
        return config

    def remove_webhook(self, webhook: WebhookConfig | str) -> bool:
        """Unregister a webhook, given its config, URL or name. True if one was removed."""
        with self._lock:
            kept = tuple(w for w in self._webhooks if not (w is webhook or webhook in (w.url, w.name)))
            removed = len(kept) != len(self._webhooks)
            self._webhooks = kept
            for config in [c for c in self._disabled if c is webhook or webhook in (c.url, c.name)]:
                del self._disabled[config]
                removed = True
        return removed

    def wants(self, event_type: WebhookEventType) -> bool:
        """Whether any active webhook takes ``event_type`` (cheap: check before building an alert)."""
        return any(w.accepts(event_type) for w in self._webhooks)

    # -- sending -------------------------------------------------------------------------------

    def submit(self, payload: WebhookPayload, *, dedup_key: Hashable | None = None) -> WebhookDelivery:
        """Queue ``payload`` for every matching webhook. Sync, thread-safe, never blocks.

        Missing ``service``/``environment`` are filled from configure()'s settings, and missing
        ``correlation_id``/``trace_id`` from the current request context and span. Alerts with the
        same ``dedup_key`` (default: event type, severity and message) are coalesced.
        """
        payload = self._complete(payload)
        if not self.wants(payload.event_type):
            return WebhookDelivery(payload, "unmatched")
        return self._admit(payload, dedup_key)

    def _admit(self, payload: WebhookPayload, dedup_key: Hashable | None) -> WebhookDelivery:
        key = dedup_key if dedup_key is not None else (payload.event_type, payload.severity, payload.message)
        if not self._coalescer.admit(key, payload, time.monotonic()):
            self._count("coalesced", payload.event_type)
            return WebhookDelivery(payload, "coalesced")
        item = Item(payload)
        self._enqueue(item)
        return item.delivery

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
        """Build and queue an alert from sync code or any thread (the ``send_*`` methods call this)."""
        kind = WebhookEventType(event_type)
        if not self.wants(kind):  # checked first: with no webhook for it, an alert costs ~1 µs
            return WebhookDelivery(WebhookPayload(kind, str(message)), "unmatched")
        if severity not in SEVERITIES:
            _guard.warn_once("webhooks severity", f"unknown severity {severity!r}; sent as 'error'")
            severity = "error"
        service, environment = self.identity
        payload = WebhookPayload(
            event_type=kind,
            message=str(message),
            severity=severity,
            data=dict(data or {}),
            service=service,
            environment=environment,
            correlation_id=correlation_id if correlation_id is not None else get_correlation_id(),
            trace_id=trace_id if trace_id is not None else _current_trace_id(),
        )
        return self._admit(payload, dedup_key)

    async def send(self, payload: WebhookPayload) -> WebhookDelivery:
        """Queue a payload you built yourself."""
        return self.submit(payload)

    # -- draining ------------------------------------------------------------------------------

    @property
    def pending(self) -> int:
        """Alerts queued or being delivered."""
        with self._lock:
            return len(self._queue) + self._in_flight

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until nothing is queued or being delivered. False if ``timeout`` passed first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._idle:
            while self._queue or self._in_flight:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._idle.wait(remaining)
        return True

    def shutdown(self, timeout: float | None = None) -> None:
        """Send what is queued (and pending coalescing summaries) for up to ``timeout`` seconds
        (default ``shutdown_timeout_s``), cancel what is left, and stop the delivery thread.
        Idempotent; a later alert starts the thread again."""
        timeout = self.shutdown_timeout_s if timeout is None else max(0.0, timeout)
        with self._lock:
            thread = self._thread
            if thread is None:
                return
            self._stop_deadline = time.monotonic() + timeout
        self._signal()
        if thread is threading.current_thread():
            return
        thread.join(timeout + 2.0)  # the worker itself cancels what is left at the deadline
        if thread.is_alive():
            _guard.warn_once(
                "webhooks shutdown", f"delivery thread still busy {timeout + 2.0:g}s after shutdown"
            )

    # -- internals -----------------------------------------------------------------------------

    def _complete(self, payload: WebhookPayload) -> WebhookPayload:
        changes: dict[str, Any] = {}
        if not payload.service or not payload.environment:
            service, environment = self.identity
            changes["service"] = payload.service or service
            changes["environment"] = payload.environment or environment
        if payload.correlation_id is None:
            changes["correlation_id"] = get_correlation_id()
        if payload.trace_id is None:
            changes["trace_id"] = _current_trace_id()
        return dataclasses.replace(payload, **changes) if changes else payload


def _current_trace_id() -> str | None:
    span_context = trace_api.get_current_span().get_span_context()
    return format(span_context.trace_id, "032x") if span_context.is_valid else None


def _after_fork() -> None:
    for manager in list(_managers):
        manager._reset_runtime()
        manager._coalescer = Coalescer(manager._coalescer.window_s)  # its lock may have been held


os.register_at_fork(after_in_child=_after_fork)
