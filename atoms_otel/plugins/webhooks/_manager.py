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

import asyncio
import atexit
import contextlib
import dataclasses
import logging
import math
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Hashable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from opentelemetry import trace as trace_api

from atoms_otel.base import guard as _guard
from atoms_otel.base.settings import ConfigurationError
from atoms_otel.base.context import get_correlation_id
from atoms_otel.otel.metrics import Counter, get_metrics_registry
from atoms_otel.plugins.webhooks._client import WebhookClient, new_http_client
from atoms_otel.plugins.webhooks._coalesce import Coalescer
from atoms_otel.plugins.webhooks._delivery import WebhookDelivery
from atoms_otel.plugins.webhooks._model import (
    SEVERITIES,
    DeliveryResult,
    Severity,
    WebhookConfig,
    WebhookEventType,
    WebhookPayload,
)
from atoms_otel.plugins.webhooks._senders import AlertSenders
from atoms_otel.plugins.webhooks._urls import AddressPolicy

if TYPE_CHECKING:
    import httpx

__all__ = ["WebhookManager", "deliveries_counter"]

_logger = logging.getLogger("atoms_otel.webhooks")
_managers: weakref.WeakSet[WebhookManager] = weakref.WeakSet()
_counter: Counter | None = None


def deliveries_counter() -> Counter:
    """``webhook_deliveries_total{outcome,event_type}``."""
    global _counter
    if _counter is None:
        _counter = get_metrics_registry().counter(
            "webhook.deliveries",
            "Webhook alerts by outcome (delivered, failed, rejected, gone, blocked, cancelled, "
            "dropped, coalesced) and event type",
            labels=("outcome", "event_type"),
        )
    return _counter


def _count(outcome: str, event_type: WebhookEventType) -> None:
    deliveries_counter().inc(labels={"outcome": outcome, "event_type": event_type.value})


def _positive(name: str, value: Any, *, integer: bool = False, allow_zero: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, int if integer else int | float):
        raise ConfigurationError(f"WebhookManager {name}: expected {'an integer' if integer else 'a number'}")
    if math.isnan(value) or value < 0 or (value == 0 and not allow_zero):
        raise ConfigurationError(f"WebhookManager {name}: expected a number {'>=' if allow_zero else '>'} 0")


class _Item:
    __slots__ = ("delivery", "payload")

    def __init__(self, payload: WebhookPayload) -> None:
        self.payload = payload
        self.delivery = WebhookDelivery(payload)


class WebhookManager(AlertSenders):
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
        self._reset_runtime()
        _managers.add(self)

    def _reset_runtime(self) -> None:
        """The worker's state (also after a fork: the child starts with none of the parent's)."""
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._queue: deque[_Item] = deque()
        self._in_flight = 0
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._stop_deadline: float | None = None
        self._signalled = False
        self._clients: dict[WebhookConfig, WebhookClient] = {}

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
            _count("coalesced", payload.event_type)
            return WebhookDelivery(payload, "coalesced")
        item = _Item(payload)
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
        service, environment = _service_and_environment()
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
            service, environment = _service_and_environment()
            changes["service"] = payload.service or service
            changes["environment"] = payload.environment or environment
        if payload.correlation_id is None:
            changes["correlation_id"] = get_correlation_id()
        if payload.trace_id is None:
            changes["trace_id"] = _current_trace_id()
        return dataclasses.replace(payload, **changes) if changes else payload

    def _enqueue(self, item: _Item) -> None:
        dropped: _Item | None = None
        cancelled = False
        with self._lock:
            if len(self._queue) >= self.queue_size:
                dropped = self._queue.popleft()
            self._queue.append(item)
            if self._thread is None:
                cancelled = not self._start_worker()
                if cancelled:
                    self._queue.remove(item)
        if dropped is not None:
            _count("dropped", dropped.payload.event_type)
            dropped.delivery.finish("dropped")
            _guard.warn_once(
                "webhooks queue", f"the webhook queue is full ({self.queue_size}); dropping the oldest alerts"
            )
        if cancelled:
            _count("cancelled", item.payload.event_type)
            item.delivery.finish("cancelled")
            return
        self._signal()

    def _start_worker(self) -> bool:
        """Called with the lock held. False if no thread can be started (interpreter exiting)."""
        thread = threading.Thread(target=self._run, name="atoms-otel-webhooks", daemon=True)
        try:
            thread.start()
        except RuntimeError:
            return False
        self._thread = thread
        if not self._atexit_registered:
            self._atexit_registered = True
            atexit.register(self.shutdown)
        return True

    def _signal(self) -> None:
        if self._signalled:  # a wake-up is already on its way: the worker will see the whole queue
            return
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            self._signalled = True
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: the worker is exiting
                loop.call_soon_threadsafe(wake.set)

    def is_worker_thread(self) -> bool:
        """True inside the delivery thread (log handlers use it to ignore our own records)."""
        return threading.current_thread() is self._thread

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except Exception as exc:
            _guard.report_internal_error("webhooks delivery thread", exc)

    async def _main(self) -> None:
        http = new_http_client()
        tasks: dict[asyncio.Task[None], _Item] = {}
        wake = asyncio.Event()
        self._wake, self._loop = wake, asyncio.get_running_loop()

        def finished(task: asyncio.Task[None]) -> None:
            item = tasks.pop(task)
            if not item.delivery.done():  # cancelled before it started
                _count("cancelled", item.payload.event_type)
                item.delivery.finish("cancelled")
            with self._lock:
                self._in_flight -= 1
                self._idle.notify_all()
            wake.set()

        try:
            while True:
                self._signalled = False  # before reading the queue: later items signal again
                wake.clear()
                now = time.monotonic()
                deadline = self._stop_deadline
                if deadline is not None and now >= deadline:
                    break
                for summary in self._coalescer.expire(now, all_windows=deadline is not None):
                    with self._lock:
                        self._queue.append(_Item(summary))
                while len(tasks) < self.max_concurrency:
                    item = self._pop()
                    if item is None:
                        break
                    task = asyncio.create_task(self._deliver(item, http))
                    tasks[task] = item
                    task.add_done_callback(finished)
                if deadline is not None and not tasks and not self._queue:
                    break
                until = min(
                    d for d in (deadline, self._coalescer.next_deadline(), now + 3600) if d is not None
                )
                try:
                    async with asyncio.timeout(max(0.0, until - now)):
                        await wake.wait()
                except TimeoutError:
                    pass
        finally:
            pending = list(tasks)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            await http.aclose()
            self._finish_worker()

    def _finish_worker(self) -> None:
        with self._lock:
            left = list(self._queue)
            self._queue.clear()
            self._thread = None
            self._loop = self._wake = None
            self._signalled = False
            self._stop_deadline = None
            self._clients = {}
            self._idle.notify_all()
        for item in left:
            _count("cancelled", item.payload.event_type)
            item.delivery.finish("cancelled")

    def _pop(self) -> _Item | None:
        with self._lock:
            if not self._queue:
                return None
            self._in_flight += 1
            return self._queue.popleft()

    def _client(self, config: WebhookConfig, http: httpx.AsyncClient) -> WebhookClient:
        client = self._clients.get(config)
        if client is None:
            if len(self._clients) > 2 * len(self._webhooks) + 8:  # drop clients of removed webhooks
                self._clients = {c: v for c, v in self._clients.items() if c in self._webhooks}
            client = self._clients[config] = WebhookClient(config, http=http, policy=self.policy)
        return client

    async def _deliver(self, item: _Item, http: httpx.AsyncClient) -> None:
        payload = item.payload
        try:
            targets = [w for w in self._webhooks if w.accepts(payload.event_type)]
            if not targets:
                item.delivery.finish("unmatched")
                return
            sends = [asyncio.create_task(self._client(w, http).send(payload)) for w in targets]
            try:
                await asyncio.wait(sends)
            except asyncio.CancelledError:  # shutdown's deadline passed
                for send in sends:
                    send.cancel()
                await asyncio.gather(*sends, return_exceptions=True)
            results = tuple(self._result_of(w, s) for w, s in zip(targets, sends, strict=True))
            for result, config in zip(results, targets, strict=True):
                self._record(result, config, payload.event_type)
            item.delivery.finish("sent", results)
        except Exception as exc:
            _guard.report_internal_error("webhooks delivery", exc)
            item.delivery.finish("cancelled")

    @staticmethod
    def _result_of(config: WebhookConfig, send: asyncio.Task[DeliveryResult]) -> DeliveryResult:
        name = config.name or ""
        if send.cancelled():
            return DeliveryResult(name, "cancelled", error="shutdown deadline passed")
        exc = send.exception()
        if exc is not None:
            _guard.report_internal_error("webhooks client", exc)
            return DeliveryResult(name, "failed", error=f"internal error: {type(exc).__name__}")
        return send.result()

    def _record(self, result: DeliveryResult, config: WebhookConfig, event_type: WebhookEventType) -> None:
        _count(result.outcome, event_type)
        name = result.webhook
        if result.outcome == "gone":
            with self._lock:
                if config in self._webhooks:
                    self._webhooks = tuple(w for w in self._webhooks if w is not config)
                    self._disabled[config] = "the receiver answered 410 Gone"
            _logger.warning("webhook %s answered 410 Gone: disabled until it is added again", name)
        elif result.ok:
            if name in self._failing:
                self._failing.discard(name)
                _logger.info("webhook %s: deliveries succeed again", name)
        elif result.outcome != "cancelled" and name not in self._failing:
            self._failing.add(name)
            _logger.warning(
                "webhook %s: delivery %s after %d attempt(s) (%s); further failures are counted in "
                "webhook_deliveries_total and logged again after a success",
                name,
                result.outcome,
                result.attempts,
                result.error,
            )


def _service_and_environment() -> tuple[str, str]:
    from atoms_otel.core.telemetry import get_telemetry

    telemetry = get_telemetry()
    if telemetry is None:
        return "unknown_service", "development"
    return telemetry.settings.service_name, telemetry.settings.environment


def _current_trace_id() -> str | None:
    span_context = trace_api.get_current_span().get_span_context()
    return format(span_context.trace_id, "032x") if span_context.is_valid else None


def _after_fork() -> None:
    for manager in list(_managers):
        manager._reset_runtime()
        manager._coalescer = Coalescer(manager._coalescer.window_s)  # its lock may have been held


os.register_at_fork(after_in_child=_after_fork)
