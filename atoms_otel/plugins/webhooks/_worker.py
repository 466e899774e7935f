"""The delivery worker behind ``WebhookManager``: one bounded queue, one background thread.

A daemon thread runs its own asyncio loop and delivers each alert to every matching webhook in
parallel, at most ``max_concurrency`` alerts at a time. The thread starts on the first alert, and
again after ``shutdown()`` if alerts keep coming. Every outcome is counted in
``webhook_deliveries_total{outcome,event_type}`` and published as a :class:`WebhookOutcome` event.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import threading
import time
from collections import deque
from typing import TYPE_CHECKING

from atoms_otel.base import guard as _guard
from atoms_otel.base.events import EventBus, WebhookOutcome
from atoms_otel.otel.metrics import Counter, get_metrics_registry
from atoms_otel.plugins.webhooks._client import WebhookClient, new_http_client
from atoms_otel.plugins.webhooks._coalesce import Coalescer
from atoms_otel.plugins.webhooks._delivery import WebhookDelivery
from atoms_otel.plugins.webhooks._model import DeliveryResult, WebhookConfig, WebhookEventType, WebhookPayload
from atoms_otel.plugins.webhooks._urls import AddressPolicy

if TYPE_CHECKING:
    import httpx

__all__ = ["DeliveryWorker", "Item", "deliveries_counter"]

_logger = logging.getLogger("atoms_otel.webhooks")
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


class Item:
    __slots__ = ("delivery", "payload")

    def __init__(self, payload: WebhookPayload) -> None:
        self.payload = payload
        self.delivery = WebhookDelivery(payload)


class DeliveryWorker:
    """The queue, the thread and the deliveries; ``WebhookManager`` adds the public surface."""

    queue_size: int
    max_concurrency: int
    policy: AddressPolicy
    events: EventBus | None
    _coalescer: Coalescer
    _webhooks: tuple[WebhookConfig, ...]
    _disabled: dict[WebhookConfig, str]
    _failing: set[str]
    _atexit_registered: bool

    def shutdown(self, timeout: float | None = None) -> None:  # pragma: no cover - the manager's
        raise NotImplementedError

    def _reset_runtime(self) -> None:
        """The worker's state (also after a fork: the child starts with none of the parent's)."""
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._queue: deque[Item] = deque()
        self._in_flight = 0
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._stop_deadline: float | None = None
        self._signalled = False
        self._clients: dict[WebhookConfig, WebhookClient] = {}

    def _enqueue(self, item: Item) -> None:
        dropped: Item | None = None
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
            self._count("dropped", dropped.payload.event_type)
            dropped.delivery.finish("dropped")
            _guard.warn_once(
                "webhooks queue", f"the webhook queue is full ({self.queue_size}); dropping the oldest alerts"
            )
        if cancelled:
            self._count("cancelled", item.payload.event_type)
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
        tasks: dict[asyncio.Task[None], Item] = {}
        wake = asyncio.Event()
        self._wake, self._loop = wake, asyncio.get_running_loop()

        def finished(task: asyncio.Task[None]) -> None:
            item = tasks.pop(task)
            if not item.delivery.done():  # cancelled before it started
                self._count("cancelled", item.payload.event_type)
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
                        self._queue.append(Item(summary))
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
            self._count("cancelled", item.payload.event_type)
            item.delivery.finish("cancelled")

    def _pop(self) -> Item | None:
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

    async def _deliver(self, item: Item, http: httpx.AsyncClient) -> None:
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

    def _count(
        self, outcome: str, event_type: WebhookEventType, webhook: str = "", attempts: int = 0
    ) -> None:
        """``webhook_deliveries_total`` and, when attached, a :class:`WebhookOutcome` event."""
        deliveries_counter().labels(outcome, event_type.value).inc()
        events = self.events
        if events is not None:
            outcome_event = WebhookOutcome(
                message=f"webhook {webhook or '(all)'}: {event_type.value} {outcome}",
                webhook=webhook,
                outcome=outcome,
                event_type=event_type.value,
                attempts=attempts,
            )
            events.publish(outcome_event)

    def _record(self, result: DeliveryResult, config: WebhookConfig, event_type: WebhookEventType) -> None:
        self._count(result.outcome, event_type, result.webhook, result.attempts)
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
